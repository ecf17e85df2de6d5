import SMETSDUIS

extension FuzzTarget {
    /// The hardened XML reader and the DUIS request parser behind duis.sock.
    ///
    /// Input: a request body. Properties: under the default limits and under tight ones the reader
    /// returns a tree or an error at an offset inside the input; the tight limits never accept what
    /// the default ones refuse, and read the same tree when both accept; an accepted tree keeps the
    /// limits (depth, elements, attributes); re-serialised with fresh prefixes and escaped text it
    /// reads back as the same tree, and so do its canonical forms; DUISParser never accepts what the
    /// reader refuses.
    public static let duisXML = FuzzTarget(
        name: "duis-xml",
        summary: "XMLReader under default and tight limits, serialize and C14N round trips; DUISParser.parse"
    ) { bytes in
        let tight = XMLLimits(maxBytes: 4096, maxDepth: 6, maxElements: 64, maxAttributes: 4)
        let tightTree: XMLElement?
        do throws(XMLError) {
            tightTree = try XMLReader.parse(bytes, limits: tight)
        } catch {
            if let failure = checkXMLError(error, inputCount: bytes.count, limits: tight) { return failure }
            tightTree = nil
        }
        let tree: XMLElement
        do throws(XMLError) {
            tree = try XMLReader.parse(bytes)
        } catch {
            if tightTree != nil { return "tight limits accepted what the default ones refuse: \(error)" }
            if let failure = checkXMLError(error, inputCount: bytes.count, limits: XMLLimits()) { return failure }
            if (try? DUISParser.parse(bytes)) != nil { return "DUISParser accepted a document the reader refuses (\(error))" }
            return nil
        }
        if let tightTree {
            if tightTree != tree { return "tight limits read a different tree" }
            if let failure = checkLimits(tree, limits: tight) { return failure }
        }
        if let failure = checkLimits(tree, limits: XMLLimits()) { return failure }
        if let failure = checkCanonical(tree) { return failure }
        var writer = XMLTreeWriter()
        writer.write(tree)
        do throws(XMLError) {
            // Fresh prefixes add declarations, which count as attributes: room for them, the rest as before.
            let roomy = XMLLimits(maxBytes: .max, maxDepth: XMLLimits().maxDepth, maxAttributes: 3 * XMLLimits().maxAttributes + 1)
            let again = try XMLReader.parse(Array(writer.output.utf8), limits: roomy)
            if again != tree { return "the re-serialised tree reads back differently: \(writer.output)" }
        } catch {
            return "the re-serialised tree does not parse (\(error)): \(writer.output)"
        }
        // The UTRN decoder behind 2.2 is total too, and what it accepts is within the token's range.
        if let request = try? DUISParser.parse(bytes), case .topUp(let utrn) = request.body,
           let token = try? UTRN.decode(utrn, requestCounter: request.requestID.counter), !(0...819_100).contains(token.pence) {
            return "UTRN \(utrn) decodes to \(token.pence) pence, outside 13 bits of pounds"
        }
        return nil
    }

    static func checkXMLError(_ error: XMLError, inputCount: Int, limits: XMLLimits) -> String? {
        // A too-large document is reported at the limit, which can be past the end of a short input.
        let bound = max(inputCount, limits.maxBytes)
        guard error.offset >= 0, error.offset <= bound else {
            return "\(error) names an offset outside the \(inputCount)-byte input"
        }
        return error.message.isEmpty ? "an error without a message" : nil
    }

    /// Depth, element count and attributes of an accepted tree, walked without recursion.
    static func checkLimits(_ root: XMLElement, limits: XMLLimits) -> String? {
        var pending: [(XMLElement, Int)] = [(root, 1)]
        var elements = 0
        while let (element, depth) = pending.popLast() {
            elements += 1
            if depth > limits.maxDepth { return "an element at depth \(depth) passed the limit of \(limits.maxDepth)" }
            if element.attributes.count > limits.maxAttributes { return "\(element.attributes.count) attributes passed the limit" }
            pending.append(contentsOf: element.children.map { ($0, depth + 1) })
        }
        return elements > limits.maxElements ? "\(elements) elements passed the limit of \(limits.maxElements)" : nil
    }
}

/// Writes a tree as XML that must read back as the same tree: every namespace bound to a fresh
/// prefix on the element that uses it, text escaped (carriage returns and all, as character
/// references, so that line-end normalisation cannot change them), the element's own text before its
/// children (the reader joins an element's character data wherever it stood).
struct XMLTreeWriter {
    var output = ""
    private var nextPrefix = 0

    mutating func write(_ element: XMLElement) {
        var declarations: [String] = []
        let name = qualified(element.name, element.namespace, elementName: true, declarations: &declarations)
        var attributes: [String] = []
        for attribute in element.attributes {
            attributes.append("\(qualified(attribute.name, attribute.namespace, elementName: false, declarations: &declarations))=\"\(Self.escape(attribute.value))\"")
        }
        output += "<\(name)" + (declarations + attributes).map { " " + $0 }.joined() + ">"
        output += Self.escape(element.text)
        for child in element.children { write(child) }
        output += "</\(name)>"
    }

    private mutating func qualified(_ local: String, _ namespace: String?, elementName: Bool, declarations: inout [String]) -> String {
        guard let namespace else {
            // An unprefixed element takes the default namespace: undeclare it for an element in none.
            if elementName { declarations.append("xmlns=\"\"") }
            return local
        }
        if namespace == "http://www.w3.org/XML/1998/namespace" { return "xml:\(local)" }
        nextPrefix += 1
        declarations.append("xmlns:p\(nextPrefix)=\"\(Self.escape(namespace))\"")
        return "p\(nextPrefix):\(local)"
    }

    static func escape(_ text: String) -> String {
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&apos;"
            case "\r", "\n", "\t": escaped += "&#\(scalar.value);"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }
}
