import Crypto
import SMETSCore

/// A DUIS user as the trust store holds it: the originator EUI-64 of its RequestIDs, its roles and
/// the key its XML signatures verify with.
public struct DUISUser: Sendable {
    public var eui: EUI64
    public var roles: Set<DUISRole>
    /// The key as bytes (Crypto's key types are not Sendable); checked a P-256 point at init.
    let rawKey: [UInt8]
    /// The serial number of its certificate (decimal), when the trust store has the certificate:
    /// a signature whose KeyInfo names another serial was made with another certificate.
    public var certificateSerial: String?

    public init(eui: EUI64, roles: Set<DUISRole>, key: P256.Signing.PublicKey, certificateSerial: String?) {
        self.eui = eui; self.roles = roles; self.rawKey = Array(key.rawRepresentation); self.certificateSerial = certificateSerial
    }

    public var key: P256.Signing.PublicKey? { try? P256.Signing.PublicKey(rawRepresentation: rawKey) }
}

/// duis.md §8 steps 2 and 6 in `verify` mode: who signed the request (E1) and whether its role may
/// send the service reference (E2).
public struct DUISTrustStore: Sendable {
    public var users: [EUI64: DUISUser]

    public init(users: [DUISUser]) {
        var byEUI: [EUI64: DUISUser] = [:]
        for user in users { byEUI[user.eui] = user }
        self.users = byEUI
    }

    /// Step 2: the originator is a known user and the document carries its valid signature.
    public func authenticate(_ request: DUISRequest, document: XMLElement) -> DUISRefusal? {
        let originator = request.requestID.originator
        guard let user = users[originator] else {
            return DUISRefusal(.invalidUser, "the originator \(originator) is not a DUIS user of this DCC (duis.users)")
        }
        guard request.signed else { return DUISRefusal(.invalidUser, "the request is not signed (duis.signatures is verify)") }
        guard !request.placeholderSignature else { return DUISRefusal(.invalidUser, "the request carries the templates' placeholder signature") }
        guard let key = user.key else { return DUISRefusal(.invalidUser, "the key of \(originator) is unusable") }
        do {
            let named = try XMLSignature.verify(document, key: key)
            if let serial = named.serial, let expected = user.certificateSerial, serial != expected {
                return DUISRefusal(.invalidUser, "the signature names certificate serial \(serial); \(originator)'s is \(expected)")
            }
        } catch {
            return DUISRefusal(.invalidUser, "the signature does not verify: \(error.message)")
        }
        return nil
    }

    /// Step 6: one of the user's roles is eligible for the service reference variant (duis.md §6).
    public func authorise(_ request: DUISRequest) -> DUISRefusal? {
        guard let user = users[request.requestID.originator] else {
            return DUISRefusal(.invalidUser, "the originator \(request.requestID.originator) is not a DUIS user of this DCC")
        }
        guard !user.roles.isDisjoint(with: request.service.roles) else {
            let held = user.roles.map(\.rawValue).sorted().joined(separator: " ")
            let eligible = request.service.roles.map(\.rawValue).sorted().joined(separator: " ")
            return DUISRefusal(.roleNotAllowed, "\(request.service.variant) is for \(eligible); \(user.eui) is \(held)")
        }
        return nil
    }
}

/// Signs DUIS responses with the DCC's XML signing key (duis.md §3: the DCC signs responses).
public struct DUISResponseSigner: Sendable {
    /// The private scalar (Crypto's key types are not Sendable).
    let rawKey: [UInt8]
    public var issuer: String?
    public var serial: String?

    public init(key: P256.Signing.PrivateKey, issuer: String?, serial: String?) {
        self.rawKey = Array(key.rawRepresentation); self.issuer = issuer; self.serial = serial
    }

    /// `xml` with its enveloped signature.
    public func sign(_ xml: String) throws(XMLSignature.Failure) -> String {
        let key: P256.Signing.PrivateKey
        do { key = try P256.Signing.PrivateKey(rawRepresentation: rawKey) } catch { throw XMLSignature.Failure("the DCC's signing key is unusable") }
        return try XMLSignature.sign(xml, key: key, issuer: issuer, serial: serial)
    }
}
