import Foundation

/// Just enough of PEM, DER and X.509 to take a DUIS user's key from its certificate (or a bare
/// public key) and to name a certificate in XML-DSig's `X509IssuerSerial`: total, typed errors,
/// no trust decisions (the trust store is the settings file).
public struct X509Error: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum PEM {
    /// The DER bytes of the first block labelled with one of `labels`, and its label.
    public static func decode(_ text: String, labels: [String]) throws(X509Error) -> (label: String, der: [UInt8]) {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        for (index, line) in lines.enumerated() {
            guard line.hasPrefix("-----BEGIN "), line.hasSuffix("-----") else { continue }
            let label = String(line.dropFirst(11).dropLast(5))
            guard labels.contains(label) else { continue }
            guard let end = lines[index...].firstIndex(of: "-----END \(label)-----") else { throw X509Error("the PEM block \(label) has no END line") }
            let body = lines[(index + 1)..<end].filter { !$0.contains(":") }.joined()
            guard let der = Data(base64Encoded: body), !der.isEmpty else { throw X509Error("the PEM block \(label) is not base64") }
            return (label, Array(der))
        }
        throw X509Error("no PEM block labelled \(labels.joined(separator: " or ")) found")
    }
}

/// One DER element: tag, its content's range in the buffer.
struct DERElement {
    var tag: UInt8
    var content: ArraySlice<UInt8>
    /// The whole encoding (tag, length and content).
    var encoding: ArraySlice<UInt8>
}

struct DERReader {
    var bytes: ArraySlice<UInt8>

    var isAtEnd: Bool { bytes.isEmpty }

    mutating func next() throws(X509Error) -> DERElement {
        let start = bytes.startIndex
        guard bytes.count >= 2 else { throw X509Error("DER: truncated element") }
        let tag = bytes[start]
        guard tag & 0x1F != 0x1F else { throw X509Error("DER: multi-byte tags are not used in certificates") }
        var index = start + 1
        let first = bytes[index]
        index += 1
        var length = 0
        if first < 0x80 {
            length = Int(first)
        } else {
            let count = Int(first & 0x7F)
            guard (1...4).contains(count), bytes.endIndex - index >= count else { throw X509Error("DER: bad length") }
            for _ in 0..<count { length = length << 8 | Int(bytes[index]); index += 1 }
        }
        guard length <= bytes.endIndex - index else { throw X509Error("DER: an element runs past its container") }
        let element = DERElement(tag: tag, content: bytes[index..<(index + length)], encoding: bytes[start..<(index + length)])
        bytes = bytes[(index + length)...]
        return element
    }

    mutating func expect(_ tag: UInt8, _ what: String) throws(X509Error) -> DERElement {
        let element = try next()
        guard element.tag == tag else { throw X509Error("DER: expected \(what)") }
        return element
    }
}

/// The parts of a certificate (or of a bare SubjectPublicKeyInfo) DUIS needs.
public struct X509Key: Sendable, Hashable {
    /// The P-256 public key, uncompressed (04 ‖ X ‖ Y, 65 bytes).
    public var publicKey: [UInt8]
    /// The certificate's serial number in decimal (nil for a bare public key).
    public var serial: String?
    /// The issuer as RFC 2253 writes it, e.g. `CN=Z1,OU=07` (nil for a bare public key).
    public var issuer: String?
    /// The EUI-64 in the subject's x500UniqueIdentifier (SMKI organisation certificates), if any.
    public var subjectEUI: [UInt8]?

    static let ecPublicKey: [UInt8] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]
    static let prime256v1: [UInt8] = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]

    /// A PEM `CERTIFICATE` or `PUBLIC KEY` holding an EC P-256 key.
    public init(pem: String) throws(X509Error) {
        let (label, der) = try PEM.decode(pem, labels: ["CERTIFICATE", "PUBLIC KEY"])
        if label == "PUBLIC KEY" {
            var reader = DERReader(bytes: der[...])
            publicKey = try Self.subjectPublicKey(try reader.expect(0x30, "SubjectPublicKeyInfo"))
            return
        }
        var outer = DERReader(bytes: der[...])
        var certificate = DERReader(bytes: try outer.expect(0x30, "Certificate").content)
        var tbs = DERReader(bytes: try certificate.expect(0x30, "TBSCertificate").content)
        var field = try tbs.next()
        if field.tag == 0xA0 { field = try tbs.next() }  // [0] version
        guard field.tag == 0x02 else { throw X509Error("DER: expected the serial number") }
        serial = Self.decimal(Array(field.content))
        _ = try tbs.expect(0x30, "the signature algorithm")
        issuer = try Self.rfc2253(try tbs.expect(0x30, "the issuer"))
        _ = try tbs.expect(0x30, "the validity")
        subjectEUI = try Self.uniqueIdentifier(try tbs.expect(0x30, "the subject"))
        publicKey = try Self.subjectPublicKey(try tbs.expect(0x30, "SubjectPublicKeyInfo"))
    }

    static func subjectPublicKey(_ info: DERElement) throws(X509Error) -> [UInt8] {
        var reader = DERReader(bytes: info.content)
        var algorithm = DERReader(bytes: try reader.expect(0x30, "the key algorithm").content)
        let kind = try algorithm.expect(0x06, "the key algorithm's OID")
        guard Array(kind.content) == ecPublicKey else { throw X509Error("the key is not an EC key (id-ecPublicKey)") }
        let curve = try algorithm.expect(0x06, "the curve's OID")
        guard Array(curve.content) == prime256v1 else { throw X509Error("the key is not on P-256 (prime256v1)") }
        let bits = try reader.expect(0x03, "the public key BIT STRING")
        let key = Array(bits.content.dropFirst())
        guard bits.content.first == 0, key.count == 65, key.first == 0x04 else { throw X509Error("the P-256 key must be an uncompressed point (65 bytes)") }
        return key
    }

    /// x500UniqueIdentifier (2.5.4.45): a BIT STRING `03 09 00` + the 8 bytes of the EUI-64.
    static func uniqueIdentifier(_ name: DERElement) throws(X509Error) -> [UInt8]? {
        for (oid, value) in try attributes(name) where oid == [0x55, 0x04, 0x2D] {
            guard value.tag == 0x03, value.content.count == 9, value.content.first == 0 else { throw X509Error("x500UniqueIdentifier is not a BIT STRING of 8 bytes") }
            return Array(value.content.dropFirst())
        }
        return nil
    }

    static func attributes(_ name: DERElement) throws(X509Error) -> [(oid: [UInt8], value: DERElement)] {
        var found: [([UInt8], DERElement)] = []
        var rdns = DERReader(bytes: name.content)
        while !rdns.isAtEnd {
            var set = DERReader(bytes: try rdns.expect(0x31, "a relative distinguished name").content)
            while !set.isAtEnd {
                var pair = DERReader(bytes: try set.expect(0x30, "an attribute").content)
                let oid = try pair.expect(0x06, "an attribute type")
                found.append((Array(oid.content), try pair.next()))
            }
        }
        return found
    }

    /// RFC 2253: the last RDN first, `TYPE=value` joined by commas, special characters escaped,
    /// values of unknown types or encodings as `OID=#hex`.
    static func rfc2253(_ name: DERElement) throws(X509Error) -> String {
        let names: [[UInt8]: String] = [[0x55, 0x04, 0x03]: "CN", [0x55, 0x04, 0x0B]: "OU", [0x55, 0x04, 0x0A]: "O", [0x55, 0x04, 0x06]: "C",
                                        [0x55, 0x04, 0x07]: "L", [0x55, 0x04, 0x08]: "ST"]
        let stringTags: Set<UInt8> = [0x0C, 0x13, 0x16, 0x14]  // UTF8String, PrintableString, IA5String, T61String
        return try attributes(name).reversed().map { oid, value -> String in
            if let short = names[oid], stringTags.contains(value.tag) {
                var text = ""
                for character in String(decoding: value.content, as: UTF8.self) {
                    if ",+\"\\<>;".contains(character) { text.append("\\") }
                    text.append(character)
                }
                return "\(short)=\(text)"
            }
            return "\(dotted(oid))=#" + value.encoding.map { String($0, radix: 16).leftPad(2) }.joined()
        }.joined(separator: ",")
    }

    static func dotted(_ oid: [UInt8]) -> String {
        guard let first = oid.first else { return "" }
        var parts = ["\(first / 40)", "\(first % 40)"]
        var value = 0
        for byte in oid.dropFirst() {
            value = value << 7 | Int(byte & 0x7F)
            if byte & 0x80 == 0 { parts.append("\(value)"); value = 0 }
            if value > Int.max >> 8 { return "0" }
        }
        return parts.joined(separator: ".")
    }

    /// A big-endian (two's complement, positive) integer in decimal.
    static func decimal(_ bytes: [UInt8]) -> String {
        var digits: [UInt8] = []
        var number = Array(bytes.drop { $0 == 0 })
        while !number.isEmpty {
            var remainder = 0
            var quotient: [UInt8] = []
            for byte in number {
                let value = remainder << 8 | Int(byte)
                let digit = value / 10
                remainder = value % 10
                if !quotient.isEmpty || digit != 0 { quotient.append(UInt8(digit)) }
            }
            digits.append(UInt8(remainder))
            number = quotient
        }
        return digits.isEmpty ? "0" : String(digits.reversed().map { Character(String($0)) })
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
