import Crypto
import Foundation

/// Enveloped XML-DSig as the DCC and DCC Boxed's signing tool use it (duis.md §3): one `Reference`
/// to the whole document (`URI=""`) with the enveloped-signature transform and SHA-256, `SignedInfo`
/// canonicalised exclusively and signed with ECDSA P-256 / SHA-256 (`SignatureValue` = r ‖ s).
/// The reference's octets are inclusive Canonical XML unless a canonicalisation transform follows
/// the enveloped one. Key lookup is the caller's: the signer is named by the RequestID originator.
public enum XMLSignature {
    public static let namespace = "http://www.w3.org/2000/09/xmldsig#"
    public static let envelopedTransform = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
    public static let ecdsaSHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
    public static let sha256 = "http://www.w3.org/2001/04/xmlenc#sha256"

    /// Why a signature does not verify (DUIS answers E1 for all of them).
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public var message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    /// What the signature's `KeyInfo` names (X509IssuerSerial), when it names it.
    public struct KeyName: Hashable, Sendable {
        public var issuer: String?
        public var serial: String?
    }

    /// Checks the enveloped signature that is the last child element of `root` against `key`.
    @discardableResult
    public static func verify(_ root: XMLElement, key: P256.Signing.PublicKey) throws(Failure) -> KeyName {
        guard let index = root.children.indices.last, root.children[index].namespace == namespace, root.children[index].name == "Signature" else {
            throw Failure("the document is not signed: no ds:Signature is the root's last child")
        }
        let signature = root.children[index]
        let parts = signature.children
        guard parts.count >= 2, parts[0].namespace == namespace, parts[0].name == "SignedInfo",
              parts[1].namespace == namespace, parts[1].name == "SignatureValue" else {
            throw Failure("ds:Signature must hold ds:SignedInfo then ds:SignatureValue")
        }
        let signedInfo = parts[0]
        let info = try SignedInfoFields(signedInfo)

        let referenced: [UInt8]
        do {
            referenced = try XMLCanonicalizer.canonicalize(root, mode: info.referenceCanonicalization, excluding: [index])
        } catch {
            throw Failure("the document cannot be canonicalised: \(error.message)")
        }
        guard Array(SHA256.hash(data: referenced)) == info.digest else {
            throw Failure("the digest of the document does not match DigestValue (the document was changed after signing)")
        }

        let canonicalInfo: [UInt8]
        do {
            canonicalInfo = try XMLCanonicalizer.canonicalize(signedInfo, mode: .exclusive,
                                                              inScope: XMLCanonicalizer.scope(above: [index, 0], in: root),
                                                              documentHasInstructions: root.hasProcessingInstruction)
        } catch {
            throw Failure("SignedInfo cannot be canonicalised: \(error.message)")
        }
        guard let raw = decodeBase64(parts[1].text), raw.count == 64 else {
            throw Failure("SignatureValue must be base64 of r ‖ s, 64 bytes for P-256")
        }
        let value: P256.Signing.ECDSASignature
        do { value = try P256.Signing.ECDSASignature(rawRepresentation: raw) } catch {
            throw Failure("SignatureValue is not an ECDSA P-256 signature")
        }
        guard key.isValidSignature(value, for: canonicalInfo) else {
            throw Failure("SignatureValue does not verify with the originator's key")
        }
        return keyName(parts.dropFirst(2).first { $0.namespace == namespace && $0.name == "KeyInfo" })
    }

    /// `xml` with an enveloped signature appended as the root's last child, made with `key`; the
    /// `KeyInfo` names the certificate by issuer and serial when they are given.
    public static func sign(_ xml: String, key: P256.Signing.PrivateKey, issuer: String?, serial: String?) throws(Failure) -> String {
        let root: XMLElement
        do { root = try XMLReader.parse(Array(xml.utf8), limits: XMLLimits(maxBytes: Int.max, maxDepth: 256, maxElements: Int.max, maxAttributes: 1024)) } catch {
            throw Failure("the document to sign is not XML smetsd reads: \(error)")
        }
        let digest: [UInt8]
        do { digest = Array(SHA256.hash(data: try XMLCanonicalizer.canonicalize(root, mode: .inclusive))) } catch {
            throw Failure("the document to sign cannot be canonicalised: \(error.message)")
        }
        // Written in its exclusive canonical form, so the octets signed are these very bytes.
        let signedInfo = #"<ds:SignedInfo xmlns:ds="\#(namespace)"><ds:CanonicalizationMethod Algorithm="\#(XMLCanonicalization.exclusive.rawValue)"></ds:CanonicalizationMethod>"#
            + #"<ds:SignatureMethod Algorithm="\#(ecdsaSHA256)"></ds:SignatureMethod><ds:Reference URI=""><ds:Transforms>"#
            + #"<ds:Transform Algorithm="\#(envelopedTransform)"></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm="\#(sha256)"></ds:DigestMethod>"#
            + "<ds:DigestValue>\(Data(digest).base64EncodedString())</ds:DigestValue></ds:Reference></ds:SignedInfo>"
        let value: P256.Signing.ECDSASignature
        do { value = try key.signature(for: Array(signedInfo.utf8)) } catch { throw Failure("signing failed: \(error)") }
        var keyInfo = ""
        if let issuer, let serial {
            keyInfo = "<ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>\(escape(issuer))</ds:X509IssuerName>"
                + "<ds:X509SerialNumber>\(escape(serial))</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo>"
        }
        let element = #"<ds:Signature xmlns:ds="\#(namespace)">"# + signedInfo.replacingOccurrences(of: #"<ds:SignedInfo xmlns:ds="\#(namespace)">"#, with: "<ds:SignedInfo>")
            + "<ds:SignatureValue>\(value.rawRepresentation.base64EncodedString())</ds:SignatureValue>\(keyInfo)</ds:Signature>"
        // Before the root's end tag: the character data around the signature stays as it was digested.
        guard let end = xml.range(of: "</", options: .backwards) else { throw Failure("the document has no end tag") }
        return String(xml[..<end.lowerBound]) + element + String(xml[end.lowerBound...])
    }

    /// The fields of SignedInfo smetsd accepts, checked.
    struct SignedInfoFields {
        var referenceCanonicalization: XMLCanonicalization
        var digest: [UInt8]

        init(_ signedInfo: XMLElement) throws(Failure) {
            let parts = signedInfo.children
            guard parts.allSatisfy({ $0.namespace == namespace }), parts.count == 3,
                  parts[0].name == "CanonicalizationMethod", parts[1].name == "SignatureMethod", parts[2].name == "Reference" else {
                throw Failure("SignedInfo must hold CanonicalizationMethod, SignatureMethod and one Reference")
            }
            guard parts[0].attribute("Algorithm") == XMLCanonicalization.exclusive.rawValue, parts[0].children.isEmpty else {
                throw Failure("CanonicalizationMethod must be \(XMLCanonicalization.exclusive.rawValue) without a prefix list")
            }
            guard parts[1].attribute("Algorithm") == ecdsaSHA256 else { throw Failure("SignatureMethod must be \(ecdsaSHA256)") }
            let reference = parts[2]
            guard reference.attribute("URI") == "" else { throw Failure("the Reference must be URI=\"\" (the whole document)") }
            let fields = reference.children
            guard fields.allSatisfy({ $0.namespace == namespace }), fields.count == 3, fields[0].name == "Transforms",
                  fields[1].name == "DigestMethod", fields[2].name == "DigestValue" else {
                throw Failure("the Reference must hold Transforms, DigestMethod and DigestValue")
            }
            let transforms = fields[0].children.map { $0.namespace == namespace && $0.name == "Transform" && $0.children.isEmpty ? $0.attribute("Algorithm") : nil }
            switch transforms {
            case [envelopedTransform]: referenceCanonicalization = .inclusive
            case [envelopedTransform, XMLCanonicalization.inclusive.rawValue]: referenceCanonicalization = .inclusive
            case [envelopedTransform, XMLCanonicalization.exclusive.rawValue]: referenceCanonicalization = .exclusive
            default: throw Failure("the Reference's transforms must be the enveloped signature, optionally then a canonicalisation")
            }
            guard fields[1].attribute("Algorithm") == sha256 else { throw Failure("DigestMethod must be \(sha256)") }
            guard let digest = decodeBase64(fields[2].text), digest.count == 32 else { throw Failure("DigestValue must be base64 of 32 bytes") }
            self.digest = digest
        }
    }

    static func keyName(_ keyInfo: XMLElement?) -> KeyName {
        let issuerSerial = keyInfo?.children.first { $0.name == "X509Data" }?.children.first { $0.name == "X509IssuerSerial" }
        return KeyName(issuer: issuerSerial?.children.first { $0.name == "X509IssuerName" }?.text.trimmingXMLSpace,
                       serial: issuerSerial?.children.first { $0.name == "X509SerialNumber" }?.text.trimmingXMLSpace)
    }

    /// Base64 with any XML whitespace in it removed (Java signers break lines and write `&#13;`).
    static func decodeBase64(_ text: String) -> [UInt8]? {
        let compact = String(decoding: text.utf8.filter { !XMLReader.isSpace($0) }, as: UTF8.self)
        return Data(base64Encoded: compact).map { Array($0) }
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
