/// Canonical XML 1.0 and Exclusive XML Canonicalization 1.0, both without comments, of the trees
/// `XMLReader` builds: what XML-DSig digests and signs (duis.md §3).
///
/// The reader already refuses DTDs and entities, resolves character references, normalises line
/// ends and attribute whitespace, and drops comments, so what is left is namespaces, attributes and
/// character data. Processing instructions would be kept by canonical XML; the reader only records
/// that one was met, so such a document is refused here. Exclusive canonicalisation takes no
/// InclusiveNamespaces prefix list (DUIS signers send none).
public enum XMLCanonicalization: String, Sendable, Hashable {
    /// Canonical XML 1.0: every namespace in scope is rendered where it is not yet.
    case inclusive = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
    /// Exclusive: only the namespaces an element or its attributes visibly use.
    case exclusive = "http://www.w3.org/2001/10/xml-exc-c14n#"
}

public struct XMLCanonicalError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum XMLCanonicalizer {
    /// The canonical octets of `element` and its subtree, as the apex of the node set.
    /// - Parameters:
    ///   - inScope: the namespaces its ancestors declare (prefix "" is the default namespace); an
    ///     inclusive apex renders them, an exclusive one those it uses.
    ///   - excluding: the path of child indexes, from `element`, of one subtree left out (the
    ///     enveloped signature); the character data around it stays.
    public static func canonicalize(_ element: XMLElement, mode: XMLCanonicalization, inScope: [String: String] = [:],
                                    excluding: [Int]? = nil, documentHasInstructions: Bool = false) throws(XMLCanonicalError) -> [UInt8] {
        if documentHasInstructions || element.hasProcessingInstruction {
            throw XMLCanonicalError("the document holds a processing instruction, which smetsd does not canonicalise")
        }
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        try render(element, scope: inScope, rendered: [:], mode: mode, excluding: excluding.map { ArraySlice($0) }, into: &out)
        return out
    }

    /// The namespaces in scope at the element reached by `path` from `root` (its own declarations
    /// not included): the context an apex inside a document is canonicalised in.
    public static func scope(above path: [Int], in root: XMLElement) -> [String: String] {
        var scope: [String: String] = [:]
        var element = root
        for index in path {
            for declaration in element.declarations { scope[declaration.prefix] = declaration.uri }
            guard element.children.indices.contains(index) else { break }
            element = element.children[index]
        }
        return scope
    }

    static func render(_ element: XMLElement, scope parentScope: [String: String], rendered: [String: String], mode: XMLCanonicalization,
                       excluding: ArraySlice<Int>?, into out: inout [UInt8]) throws(XMLCanonicalError) {
        guard element.texts.count == element.children.count + 1 else {
            throw XMLCanonicalError("the element \(element.name) was not built by XMLReader (its character data is not interleaved)")
        }
        var scope = parentScope
        for declaration in element.declarations { scope[declaration.prefix] = declaration.uri }
        var emit: [(prefix: String, uri: String)] = []
        var nowRendered = rendered
        switch mode {
        case .inclusive:
            for (prefix, uri) in scope where prefix != "xml" && prefix != "" && rendered[prefix] != uri { emit.append((prefix, uri)) }
            // xmlns="" only undoes a default namespace an output ancestor rendered.
            let defaultURI = scope[""] ?? ""
            if defaultURI != (rendered[""] ?? "") { emit.append(("", defaultURI)) }
        case .exclusive:
            var used: Set<String> = [element.prefix ?? ""]
            for attribute in element.attributes { if let prefix = attribute.prefix { used.insert(prefix) } }
            for prefix in used where prefix != "xml" {
                let uri = scope[prefix] ?? ""
                if uri != (rendered[prefix] ?? "") { emit.append((prefix, uri)) }
            }
        }
        for (prefix, uri) in emit { nowRendered[prefix] = uri }
        emit.sort { $0.prefix.utf8.lexicographicallyPrecedes($1.prefix.utf8) }

        let qname = element.prefix.map { $0 + ":" + element.name } ?? element.name
        out.append(UInt8(ascii: "<"))
        out.append(contentsOf: qname.utf8)
        for (prefix, uri) in emit {
            out.append(contentsOf: (prefix.isEmpty ? " xmlns=\"" : " xmlns:\(prefix)=\"").utf8)
            escapeAttribute(uri, into: &out)
            out.append(UInt8(ascii: "\""))
        }
        // Attributes by namespace URI (none first), then local name, in code point order.
        for attribute in element.sortedAttributes {
            out.append(UInt8(ascii: " "))
            if let prefix = attribute.prefix { out.append(contentsOf: prefix.utf8); out.append(UInt8(ascii: ":")) }
            out.append(contentsOf: attribute.name.utf8)
            out.append(contentsOf: "=\"".utf8)
            escapeAttribute(attribute.value, into: &out)
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: ">"))
        for (index, child) in element.children.enumerated() {
            escapeText(element.texts[index], into: &out)
            if let excluding, excluding.first == index {
                if excluding.count == 1 { continue }
                try render(child, scope: scope, rendered: nowRendered, mode: mode, excluding: excluding.dropFirst(), into: &out)
            } else {
                try render(child, scope: scope, rendered: nowRendered, mode: mode, excluding: nil, into: &out)
            }
        }
        escapeText(element.texts[element.children.count], into: &out)
        out.append(contentsOf: "</".utf8)
        out.append(contentsOf: qname.utf8)
        out.append(UInt8(ascii: ">"))
    }

    static func escapeText(_ text: String, into out: inout [UInt8]) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "&"): out.append(contentsOf: "&amp;".utf8)
            case UInt8(ascii: "<"): out.append(contentsOf: "&lt;".utf8)
            case UInt8(ascii: ">"): out.append(contentsOf: "&gt;".utf8)
            case 0x0D: out.append(contentsOf: "&#xD;".utf8)
            default: out.append(byte)
            }
        }
    }

    static func escapeAttribute(_ text: String, into out: inout [UInt8]) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "&"): out.append(contentsOf: "&amp;".utf8)
            case UInt8(ascii: "<"): out.append(contentsOf: "&lt;".utf8)
            case UInt8(ascii: "\""): out.append(contentsOf: "&quot;".utf8)
            case 0x09: out.append(contentsOf: "&#x9;".utf8)
            case 0x0A: out.append(contentsOf: "&#xA;".utf8)
            case 0x0D: out.append(contentsOf: "&#xD;".utf8)
            default: out.append(byte)
            }
        }
    }
}
