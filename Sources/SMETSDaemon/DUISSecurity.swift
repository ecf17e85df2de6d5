import Crypto
import Logging
import SMETSConfig
import SMETSCore
import SMETSDUIS

/// The DUIS front's keys, made from what the loader read (`LabSnapshot.duisCredentials`): the
/// trust store checked in `verify` mode and the DCC's response signer, when a key is configured.
enum DUISKeys {
    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    static func trustStore(_ credentials: DUISCredentials) throws(Problem) -> DUISTrustStore {
        var users: [DUISUser] = []
        for user in credentials.users.values {
            let key: P256.Signing.PublicKey
            do { key = try P256.Signing.PublicKey(x963Representation: user.key.publicKey) } catch {
                throw Problem(description: "duis.users: the key of \(user.eui) is not a point on P-256")
            }
            users.append(DUISUser(eui: user.eui, roles: Set(user.roles.compactMap(DUISRole.init(rawValue:))), key: key,
                                  certificateSerial: user.key.serial))
        }
        return DUISTrustStore(users: users)
    }

    static func signer(_ credentials: DUISCredentials) throws(Problem) -> DUISResponseSigner? {
        guard let pem = credentials.signingKeyPEM else { return nil }
        let key: P256.Signing.PrivateKey
        do { key = try P256.Signing.PrivateKey(pemRepresentation: pem) } catch {
            throw Problem(description: "duis.signingKey: not a P-256 private key in PEM (\(error))")
        }
        if let certificate = credentials.signingCertificate, certificate.publicKey != Array(key.publicKey.x963Representation) {
            throw Problem(description: "duis.signingCertificate: the certificate is not signingKey's")
        }
        return DUISResponseSigner(key: key, issuer: credentials.signingCertificate?.issuer, serial: credentials.signingCertificate?.serial)
    }
}

extension DUISService {
    /// duis.md §2: in `verify` mode a RequestID counter must be above the last one accepted from its
    /// originator. The last is kept in the store, durable before the reply, so a restart keeps it.
    /// CV 5/6/7 repeat their CV 4's RequestID, and 2.2's counter carries the UTRN counter (§6.11):
    /// neither is held to it. Nil when the request may go on.
    func checkCounter(_ request: DUISRequest, now: Timestamp) -> Reply? {
        if case .signedPreCommand = request.body { return nil }
        if request.service.variant == "2.2" { return nil }
        let id = request.requestID
        let key = "duis.requestCounter.\(id.originator)"
        let last: UInt64?
        do {
            last = try engine.store.write { tx -> UInt64? in
                if let last = try tx.meta(key).flatMap({ UInt64($0) }), id.counter <= last { return last }
                try tx.setMeta(key, String(id.counter))
                return nil
            }
        } catch {
            log(.error, "duis.refused", "the RequestID counter could not be recorded", ["request_id": id.description, "error": "\(error)"])
            return Self.plain(503, "storage_unavailable: the RequestID counter could not be recorded; try again")
        }
        guard let last else { return nil }
        return refuse(request, DUISRefusal(.invalidUser, "RequestID counter \(id.counter) is not above \(last), the last accepted from \(id.originator)"),
                      now: now)
    }

    /// A reply as it goes out: XML signed with the DCC's key when one is configured.
    func signed(_ reply: Reply) -> Reply {
        guard let signer, reply.contentType == "application/xml" else { return reply }
        var signed = reply
        signed.body = signer.signedOrLogged(reply.body, logger: logger)
        return signed
    }
}

extension DUISResponseSigner {
    /// Signs, or logs and leaves the document unsigned: smetsd's own output always parses, so a
    /// failure here is a bug to see in the log, not a reason to withhold the answer.
    func signedOrLogged(_ xml: String, logger: Logger) -> String {
        do { return try sign(xml) } catch {
            logger.error("a DUIS response could not be signed", metadata: ["event": "duis.unsigned_response", "error": .string(error.message)])
            return xml
        }
    }
}
