import Testing
@testable import SMETSDUIS

@Suite struct XMLReaderTests {
    func parse(_ text: String, limits: XMLLimits = XMLLimits()) throws(XMLError) -> XMLElement { try XMLReader.parse(Array(text.utf8), limits: limits) }

    func kind(_ text: String, limits: XMLLimits = XMLLimits()) -> XMLError.Kind? {
        do { _ = try parse(text, limits: limits); return nil } catch { return error.kind }
    }

    @Test func namespacesAttributesTextAndReferences() throws {
        let root = try parse("""
            <?xml version="1.0" encoding="UTF-8"?>
            <!-- a comment -->
            <a:Root xmlns:a="urn:a" xmlns="urn:d" x="1 &amp; 2" a:y='q'>
              <Child>t&lt;&#65;&#x42;<![CDATA[<raw&>]]></Child><a:Empty/>
            </a:Root>
            """)
        #expect(root.namespace == "urn:a" && root.name == "Root")
        #expect(root.attribute("x") == "1 & 2")
        #expect(root.attribute("y", namespace: "urn:a") == "q")
        #expect(root.children.map(\.name) == ["Child", "Empty"])
        #expect(root.children[0].namespace == "urn:d")
        #expect(root.children[0].text == "t<AB<raw&>")
        #expect(root.textIsBlank)
    }

    @Test func anyDoctypeIsRefusedBeforeItIsRead() {
        let xxe = """
            <?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>
            """
        #expect(kind(xxe) == .doctype)
        let laughs = """
            <!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>
            """
        #expect(kind(laughs) == .doctype)
        #expect(kind("<r><!DOCTYPE r></r>") == .doctype)
        #expect(kind("<r/><!DOCTYPE r>") == .doctype)
        #expect(kind("<r><!ENTITY x 'y'></r>") == .doctype)
    }

    @Test func undeclaredEntitiesAreRefused() {
        #expect(kind("<r>&x;</r>") == .entity)
        #expect(kind("<r a='&ext;'/>") == .entity)
        #expect(kind("<r>&#0;</r>") == .notWellFormed)
        #expect(kind("<r>a & b</r>") == .notWellFormed)
    }

    @Test func limitsAreEnforced() {
        let deep = String(repeating: "<a>", count: 40) + String(repeating: "</a>", count: 40)
        #expect(kind(deep, limits: XMLLimits(maxDepth: 32)) == .tooDeep)
        #expect(kind(deep, limits: XMLLimits(maxDepth: 40)) == nil)
        let many = "<r>" + String(repeating: "<a/>", count: 20) + "</r>"
        #expect(kind(many, limits: XMLLimits(maxElements: 20)) == .tooManyElements)
        #expect(kind(many, limits: XMLLimits(maxElements: 21)) == nil)
        #expect(kind("<r>" + String(repeating: "x", count: 100) + "</r>", limits: XMLLimits(maxBytes: 50)) == .tooLarge)
        #expect(kind("<r a='1' b='2' c='3'/>", limits: XMLLimits(maxAttributes: 2)) == .tooManyAttributes)
    }

    @Test func malformedDocuments() {
        for text in ["", "text", "<r>", "<r></s>", "<r><a></r></a>", "<r/><r/>", "<r/>tail", "<r a=1/>", "<r a='1' a='2'/>",
                     "<p:r/>", "<r xmlns:p=''/>", "<r><!-- unterminated</r>", "<1r/>", "<r a='<'/>", "<r", "<?xml version='1.0' encoding='ISO-8859-1'?><r/>"] {
            #expect(kind(text) != nil, "accepted \(text)")
        }
        #expect(kind("<r>\u{FFFD}</r>") == nil)
        #expect((try? XMLReader.parse([0x3C, 0x72, 0x3E, 0xFF, 0x3C, 0x2F, 0x72, 0x3E])) == nil)
    }

    /// Total: mutated documents give a tree or a typed error, never a trap.
    @Test func mutationsNeverTrap() {
        let seed = Array("""
            <sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header><sr:RequestID>a</sr:RequestID></sr:Header><sr:Body><![CDATA[x]]>&amp;&#65;</sr:Body><!--c--></sr:Request>
            """.utf8)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state }
        let alphabet = Array("<>/&;#x![]-?='\" :aZ09".utf8)
        for _ in 0..<5000 {
            var bytes = seed
            for _ in 0..<Int(next() % 4 + 1) {
                let position = Int(next() % UInt64(bytes.count))
                switch next() % 3 {
                case 0: bytes[position] = alphabet[Int(next() % UInt64(alphabet.count))]
                case 1: bytes.remove(at: position)
                default: bytes.insert(alphabet[Int(next() % UInt64(alphabet.count))], at: position)
                }
                if bytes.isEmpty { bytes = [0x3C] }
            }
            _ = try? XMLReader.parse(bytes)
        }
    }
}
