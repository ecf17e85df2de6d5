/// A small, total XML reader for DUIS documents, written for hostile input.
///
/// It knows only what DUIS needs: elements, attributes, namespaces, character data, CDATA, comments,
/// processing instructions and the five predefined entities plus character references. A DOCTYPE,
/// or a reference to any other entity, is refused where it is met, before anything is resolved: no
/// DTD is read, no external entity fetched, no expansion can grow (XXE, billion laughs). Every
/// input gives a tree or a typed error; size, depth and element count are bounded by `XMLLimits`.
public struct XMLLimits: Sendable, Hashable {
    /// Largest document, in bytes.
    public var maxBytes: Int
    /// Deepest nesting of elements (the root is depth 1).
    public var maxDepth: Int
    /// Most elements in one document.
    public var maxElements: Int
    /// Most attributes (namespace declarations included) on one element.
    public var maxAttributes: Int

    public init(maxBytes: Int = 16 << 20, maxDepth: Int = 32, maxElements: Int = 100_000, maxAttributes: Int = 32) {
        self.maxBytes = maxBytes; self.maxDepth = maxDepth; self.maxElements = maxElements; self.maxAttributes = maxAttributes
    }
}

/// Why a document was refused, and where (byte offset).
public struct XMLError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        case tooLarge = "too_large"
        case tooDeep = "too_deep"
        case tooManyElements = "too_many_elements"
        case tooManyAttributes = "too_many_attributes"
        /// A document type declaration: DTDs are refused outright.
        case doctype
        /// A reference to an entity other than the five predefined ones.
        case entity
        case encoding
        case notWellFormed = "not_well_formed"
        case namespace
    }

    public var kind: Kind
    public var offset: Int
    public var message: String
    public init(_ kind: Kind, at offset: Int, _ message: String) { self.kind = kind; self.offset = offset; self.message = message }
    public var description: String { "\(message) (byte \(offset))" }
}

public struct XMLAttribute: Hashable, Sendable {
    /// Unprefixed attributes have no namespace.
    public var namespace: String?
    public var name: String
    public var value: String
    /// The prefix as written (canonicalisation needs it; equality does not look at it).
    public var prefix: String? = nil

    public static func == (a: XMLAttribute, b: XMLAttribute) -> Bool { a.namespace == b.namespace && a.name == b.name && a.value == b.value }

    public func hash(into hasher: inout Hasher) { hasher.combine(namespace); hasher.combine(name); hasher.combine(value) }
}

/// A namespace declaration as written on a start tag; prefix "" is the default namespace.
public struct XMLNamespaceDeclaration: Hashable, Sendable {
    public var prefix: String
    public var uri: String
}

/// An element: its expanded name, attributes, child elements and the character data directly in it.
public struct XMLElement: Hashable, Sendable {
    public var namespace: String?
    public var name: String
    public var attributes: [XMLAttribute]
    public var children: [XMLElement]
    public var text: String
    /// The prefix of the element's name as written.
    public var prefix: String? = nil
    /// The namespace declarations on its start tag, in document order.
    public var declarations: [XMLNamespaceDeclaration] = []
    /// The character data in document order around the children: `texts[i]` comes before
    /// `children[i]`, the last after the last child (so `texts.count == children.count + 1`);
    /// `text` is their concatenation. Canonical XML needs the interleaving.
    public var texts: [String] = [""]
    /// On the root: whether the document holds a processing instruction (other than the XML
    /// declaration). Canonical XML keeps them; smetsd's canonicaliser refuses such documents.
    public var hasProcessingInstruction = false

    public func attribute(_ name: String, namespace: String? = nil) -> String? {
        attributes.first { $0.name == name && $0.namespace == namespace }?.value
    }

    /// Whether the character data is only XML whitespace (mixed content is not DUIS).
    public var textIsBlank: Bool { text.utf8.allSatisfy(XMLReader.isSpace) }

    /// Equal when the names, attributes (in any order, as XML has them), children and character data
    /// are: how the document spelled them (prefixes, declarations, attribute order, where the text
    /// stood) is kept for canonicalisation only.
    public static func == (a: XMLElement, b: XMLElement) -> Bool {
        a.namespace == b.namespace && a.name == b.name && a.sortedAttributes == b.sortedAttributes && a.text == b.text && a.children == b.children
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(namespace); hasher.combine(name); hasher.combine(sortedAttributes); hasher.combine(text); hasher.combine(children)
    }

    /// By namespace, then local name: the order Canonical XML writes them in.
    var sortedAttributes: [XMLAttribute] {
        attributes.sorted { a, b in
            let (na, nb) = (a.namespace ?? "", b.namespace ?? "")
            if na != nb { return na.utf8.lexicographicallyPrecedes(nb.utf8) }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
    }
}

public enum XMLReader {
    static let xmlNamespace = "http://www.w3.org/XML/1998/namespace"

    @inline(__always) static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }

    /// Parses one document.
    public static func parse(_ bytes: [UInt8], limits: XMLLimits = XMLLimits()) throws(XMLError) -> XMLElement {
        guard bytes.count <= limits.maxBytes else {
            throw XMLError(.tooLarge, at: limits.maxBytes, "the document is \(bytes.count) bytes; the limit is \(limits.maxBytes)")
        }
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw XMLError(.encoding, at: 0, "the document is not valid UTF-8")
        }
        var parser = Parser(bytes: bytes, limits: limits)
        return try parser.document()
    }

    struct OpenElement {
        var prefix: String?
        var qname: ArraySlice<UInt8>
        var element: XMLElement
        var scope: [String: String]
    }

    struct Parser {
        let bytes: [UInt8]
        let limits: XMLLimits
        var index = 0
        var elements = 0
        var instructions = 0

        init(bytes: [UInt8], limits: XMLLimits) { self.bytes = bytes; self.limits = limits }

        func fail(_ kind: XMLError.Kind, _ message: String) -> XMLError { XMLError(kind, at: index, message) }

        func starts(with literal: String) -> Bool {
            let utf8 = Array(literal.utf8)
            guard index + utf8.count <= bytes.count else { return false }
            return bytes[index..<index + utf8.count].elementsEqual(utf8)
        }

        mutating func skipSpace() { while index < bytes.count, XMLReader.isSpace(bytes[index]) { index += 1 } }

        /// Skips to just past `terminator`, or fails.
        mutating func skip(past terminator: String, what: String) throws(XMLError) {
            let utf8 = Array(terminator.utf8)
            while index + utf8.count <= bytes.count {
                if bytes[index..<index + utf8.count].elementsEqual(utf8) { index += utf8.count; return }
                index += 1
            }
            throw fail(.notWellFormed, "unterminated \(what)")
        }

        /// Comments, processing instructions, and the refusal of any declaration. True if it consumed one.
        mutating func miscellany() throws(XMLError) -> Bool {
            if starts(with: "<!--") {
                index += 4
                try skip(past: "-->", what: "comment")
                return true
            }
            if starts(with: "<?") {
                let start = index
                index += 2
                try skip(past: "?>", what: "processing instruction")
                try checkDeclaration(bytes[start..<index])
                if !Self.isXMLDeclaration(bytes[start..<index]) { instructions += 1 }
                return true
            }
            if starts(with: "<!DOCTYPE") || starts(with: "<!doctype") {
                throw fail(.doctype, "a DOCTYPE is not accepted: DUIS documents carry no DTD")
            }
            if starts(with: "<!") && !starts(with: "<![CDATA[") {
                throw fail(.doctype, "a markup declaration is not accepted: DUIS documents carry no DTD")
            }
            return false
        }

        static func isXMLDeclaration(_ text: ArraySlice<UInt8>) -> Bool {
            let head = Array(text.prefix(6))
            return head.count == 6 && head[0..<5].elementsEqual("<?xml".utf8) && XMLReader.isSpace(head[5])
        }

        /// The XML declaration may name only UTF-8.
        func checkDeclaration(_ text: ArraySlice<UInt8>) throws(XMLError) {
            let string = String(decoding: text, as: UTF8.self)
            guard string.hasPrefix("<?xml ") || string.hasPrefix("<?xml\t") || string.hasPrefix("<?xml\n") || string.hasPrefix("<?xml\r") else { return }
            if let range = string.range(of: "encoding") {
                let rest = string[range.upperBound...].drop { $0 == " " || $0 == "=" || $0 == "\"" || $0 == "'" }
                let name = rest.prefix { $0 != "\"" && $0 != "'" }.lowercased()
                guard name == "utf-8" || name == "utf8" else {
                    throw XMLError(.encoding, at: index, "the declared encoding '\(name)' is not UTF-8")
                }
            }
        }

        mutating func document() throws(XMLError) -> XMLElement {
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
            while true {
                skipSpace()
                guard index < bytes.count else { throw fail(.notWellFormed, "no root element") }
                if try miscellany() { continue }
                break
            }
            guard bytes[index] == UInt8(ascii: "<") else { throw fail(.notWellFormed, "text before the root element") }
            var root = try element()
            while true {
                skipSpace()
                if index >= bytes.count {
                    root.hasProcessingInstruction = instructions > 0
                    return root
                }
                if try miscellany() { continue }
                throw fail(.notWellFormed, "content after the root element")
            }
        }

        static func isNameByte(_ byte: UInt8) -> Bool {
            !(XMLReader.isSpace(byte) || byte == UInt8(ascii: "/") || byte == UInt8(ascii: ">") || byte == UInt8(ascii: "=")
              || byte == UInt8(ascii: "<") || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") || byte == UInt8(ascii: "&"))
        }

        mutating func name() throws(XMLError) -> ArraySlice<UInt8> {
            let start = index
            while index < bytes.count, Self.isNameByte(bytes[index]) { index += 1 }
            guard index > start else { throw fail(.notWellFormed, "a name was expected") }
            let first = bytes[start]
            if first == UInt8(ascii: "-") || first == UInt8(ascii: ".") || (first >= 0x30 && first <= 0x39) || first == UInt8(ascii: ":") {
                throw XMLError(.notWellFormed, at: start, "'\(String(decoding: bytes[start..<index], as: UTF8.self))' is not an XML name")
            }
            return bytes[start..<index]
        }

        static func split(_ qname: ArraySlice<UInt8>) -> (prefix: String?, local: String) {
            if let colon = qname.firstIndex(of: UInt8(ascii: ":")) {
                return (String(decoding: qname[qname.startIndex..<colon], as: UTF8.self), String(decoding: qname[(colon + 1)...], as: UTF8.self))
            }
            return (nil, String(decoding: qname, as: UTF8.self))
        }

        /// Character data up to `end`, with references resolved; only the predefined entities exist.
        mutating func characters(until stop: (UInt8) -> Bool, attribute: Bool) throws(XMLError) -> String {
            var out: [UInt8] = []
            while index < bytes.count, !stop(bytes[index]) {
                let byte = bytes[index]
                if byte == UInt8(ascii: "&") {
                    try reference(into: &out)
                } else if attribute && byte == UInt8(ascii: "<") {
                    throw fail(.notWellFormed, "'<' in an attribute value")
                } else if byte == 0x0D {
                    // Line ends are normalised before anything else (XML 1.0 §2.11): CR LF and a
                    // lone CR are one LF (a space in an attribute); `&#13;` stays a CR.
                    if index + 1 < bytes.count, bytes[index + 1] == 0x0A { index += 1; continue }
                    out.append(attribute ? 0x20 : 0x0A)
                    index += 1
                } else {
                    // Attribute values are normalised: each whitespace character becomes a space.
                    out.append(attribute && XMLReader.isSpace(byte) ? 0x20 : byte)
                    index += 1
                }
            }
            return String(decoding: out, as: UTF8.self)
        }

        mutating func reference(into out: inout [UInt8]) throws(XMLError) {
            let start = index
            index += 1
            var end = index
            while end < bytes.count, end - index <= 12, bytes[end] != UInt8(ascii: ";") { end += 1 }
            guard end < bytes.count, bytes[end] == UInt8(ascii: ";"), end > index else {
                throw XMLError(.notWellFormed, at: start, "'&' must start a reference such as &amp;")
            }
            let body = bytes[index..<end]
            index = end + 1
            let text = String(decoding: body, as: UTF8.self)
            switch text {
            case "lt": out.append(UInt8(ascii: "<"))
            case "gt": out.append(UInt8(ascii: ">"))
            case "amp": out.append(UInt8(ascii: "&"))
            case "apos": out.append(UInt8(ascii: "'"))
            case "quot": out.append(UInt8(ascii: "\""))
            default:
                guard text.hasPrefix("#") else {
                    throw XMLError(.entity, at: start, "the entity '&\(text);' is not accepted: only the five predefined entities and character references are")
                }
                let digits = text.dropFirst()
                let value: UInt32? = digits.hasPrefix("x") ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits, radix: 10)
                guard let value, let scalar = Unicode.Scalar(value), value == 0x9 || value == 0xA || value == 0xD || value >= 0x20 else {
                    throw XMLError(.notWellFormed, at: start, "'&\(text);' is not a valid character reference")
                }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            }
        }

        mutating func startTag(depth: Int) throws(XMLError) -> (qname: ArraySlice<UInt8>, attributes: [(ArraySlice<UInt8>, String)], empty: Bool) {
            guard depth <= limits.maxDepth else { throw fail(.tooDeep, "elements nest deeper than \(limits.maxDepth)") }
            elements += 1
            guard elements <= limits.maxElements else { throw fail(.tooManyElements, "more than \(limits.maxElements) elements") }
            index += 1  // '<'
            let qname = try name()
            var attributes: [(ArraySlice<UInt8>, String)] = []
            while true {
                let before = index
                skipSpace()
                guard index < bytes.count else { throw fail(.notWellFormed, "unterminated start tag") }
                if bytes[index] == UInt8(ascii: ">") { index += 1; return (qname, attributes, false) }
                if starts(with: "/>") { index += 2; return (qname, attributes, true) }
                guard index > before else { throw fail(.notWellFormed, "attributes must be separated by whitespace") }
                let attributeName = try name()
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "=") else { throw fail(.notWellFormed, "'=' expected after an attribute name") }
                index += 1
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") else {
                    throw fail(.notWellFormed, "an attribute value must be quoted")
                }
                let quote = bytes[index]
                index += 1
                let value = try characters(until: { $0 == quote }, attribute: true)
                guard index < bytes.count else { throw fail(.notWellFormed, "unterminated attribute value") }
                index += 1
                guard !attributes.contains(where: { $0.0.elementsEqual(attributeName) }) else {
                    throw fail(.notWellFormed, "the attribute '\(String(decoding: attributeName, as: UTF8.self))' appears twice")
                }
                attributes.append((attributeName, value))
                guard attributes.count <= limits.maxAttributes else { throw fail(.tooManyAttributes, "more than \(limits.maxAttributes) attributes on one element") }
            }
        }

        /// Resolves names against the scope the element opens.
        func open(_ tag: (qname: ArraySlice<UInt8>, attributes: [(ArraySlice<UInt8>, String)], empty: Bool),
                  parentScope: [String: String]) throws(XMLError) -> OpenElement {
            var scope = parentScope
            var declarations: [XMLNamespaceDeclaration] = []
            for (rawName, value) in tag.attributes {
                let (prefix, local) = Self.split(rawName)
                if prefix == nil && local == "xmlns" {
                    scope[""] = value
                    declarations.append(XMLNamespaceDeclaration(prefix: "", uri: value))
                }
                if prefix == "xmlns" {
                    guard !value.isEmpty else { throw fail(.namespace, "the prefix '\(local)' cannot be undeclared") }
                    guard local != "xmlns", local != "xml" || value == XMLReader.xmlNamespace else {
                        throw fail(.namespace, "the prefix '\(local)' cannot be declared")
                    }
                    scope[local] = value
                    declarations.append(XMLNamespaceDeclaration(prefix: local, uri: value))
                }
            }
            let (prefix, local) = Self.split(tag.qname)
            let namespace: String?
            if let prefix {
                guard let bound = prefix == "xml" ? XMLReader.xmlNamespace : scope[prefix] else {
                    throw fail(.namespace, "the prefix '\(prefix)' is not declared")
                }
                namespace = bound
            } else {
                namespace = scope[""].flatMap { $0.isEmpty ? nil : $0 }
            }
            var attributes: [XMLAttribute] = []
            for (rawName, value) in tag.attributes {
                let (attributePrefix, attributeLocal) = Self.split(rawName)
                if attributePrefix == "xmlns" || (attributePrefix == nil && attributeLocal == "xmlns") { continue }
                var attributeNamespace: String?
                if let attributePrefix {
                    guard let bound = attributePrefix == "xml" ? XMLReader.xmlNamespace : scope[attributePrefix] else {
                        throw fail(.namespace, "the prefix '\(attributePrefix)' is not declared")
                    }
                    attributeNamespace = bound
                }
                guard !attributes.contains(where: { $0.namespace == attributeNamespace && $0.name == attributeLocal }) else {
                    throw fail(.namespace, "the attribute '\(attributeLocal)' appears twice in one namespace")
                }
                attributes.append(XMLAttribute(namespace: attributeNamespace, name: attributeLocal, value: value, prefix: attributePrefix))
            }
            return OpenElement(prefix: prefix, qname: tag.qname,
                               element: XMLElement(namespace: namespace, name: local, attributes: attributes, children: [], text: "",
                                                   prefix: prefix, declarations: declarations, texts: []), scope: scope)
        }

        /// One element and everything in it, without recursion: the depth limit bounds the stack.
        mutating func element() throws(XMLError) -> XMLElement {
            let rootTag = try startTag(depth: 1)
            let root = try open(rootTag, parentScope: [:])
            if rootTag.empty { var element = root.element; element.texts = [""]; return element }
            var stack: [OpenElement] = [root]
            var text: [UInt8] = []
            while true {
                guard index < bytes.count else { throw fail(.notWellFormed, "the document ends inside an element") }
                if bytes[index] != UInt8(ascii: "<") {
                    let chunk = try characters(until: { $0 == UInt8(ascii: "<") }, attribute: false)
                    text.append(contentsOf: Array(chunk.utf8))
                    continue
                }
                if starts(with: "<![CDATA[") {
                    index += 9
                    let start = index
                    try skip(past: "]]>", what: "CDATA section")
                    // Line ends normalised here too (CR LF, lone CR -> LF).
                    var position = start
                    while position < index - 3 {
                        let byte = bytes[position]
                        if byte == 0x0D {
                            if position + 1 < index - 3, bytes[position + 1] == 0x0A { position += 1; continue }
                            text.append(0x0A)
                        } else {
                            text.append(byte)
                        }
                        position += 1
                    }
                    continue
                }
                if try miscellany() { continue }
                if starts(with: "</") {
                    index += 2
                    let closing = try name()
                    skipSpace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ">") else { throw fail(.notWellFormed, "unterminated end tag") }
                    index += 1
                    var done = stack.removeLast()
                    guard done.qname.elementsEqual(closing) else {
                        throw fail(.notWellFormed, "</\(String(decoding: closing, as: UTF8.self))> closes <\(String(decoding: done.qname, as: UTF8.self))>")
                    }
                    let tail = String(decoding: text, as: UTF8.self)
                    done.element.text += tail
                    done.element.texts.append(tail)
                    text = []
                    if stack.isEmpty { return done.element }
                    stack[stack.count - 1].element.children.append(done.element)
                    continue
                }
                // A child opens: the parent keeps the text met so far.
                let before = String(decoding: text, as: UTF8.self)
                stack[stack.count - 1].element.text += before
                stack[stack.count - 1].element.texts.append(before)
                text = []
                let tag = try startTag(depth: stack.count + 1)
                let child = try open(tag, parentScope: stack[stack.count - 1].scope)
                if tag.empty {
                    var element = child.element
                    element.texts = [""]
                    stack[stack.count - 1].element.children.append(element)
                } else {
                    stack.append(child)
                }
            }
        }
    }
}
