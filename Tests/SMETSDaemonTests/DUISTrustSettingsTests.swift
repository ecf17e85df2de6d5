import Foundation
import SMETSCore
@testable import SMETSConfig
@testable import SMETSDaemon
import Testing

/// `duis.signatures`, `duis.users` and the DCC's signing key: what the loader refuses (one problem
/// line per fault, naming the key) and what it reads from the shipped TEST files.
struct DUISTrustSettingsTests {
    static let keys = SettingsTests.root + "/devices/keys/"

    /// The problems of a devices folder holding only `smetsd.json`, and the folder's credentials
    /// when it loads (it never does here: a folder without a lab has other problems).
    static func problems(_ duis: String) throws -> [String] {
        try SettingsTests.settingsProblems(#"{"duis": \#(duis)}"#)
    }

    static func credentials(_ duis: String) throws -> (DUISCredentials, [String]) {
        let settings = try SettingsTests.decode(#"{"duis": \#(duis)}"#)
        var problems = settings.problems()
        let credentials = DUISCredentials.load(settings.duis, base: URL(fileURLWithPath: "/nonexistent"), problems: &problems)
        return (credentials, problems)
    }

    @Test func verifyNeedsUsersAndTheDCCKey() throws {
        let problems = try Self.problems(#"{"signatures": "verify"}"#)
        #expect(problems.contains { $0.contains("duis.users: verify needs at least one user") }, "\(problems)")
        #expect(problems.contains { $0.contains("duis.signingKey: verify signs responses") }, "\(problems)")
        #expect(try Self.problems(#"{"signatures": "strict"}"#).contains { $0.contains("duis.signatures: 'strict' must be lab or verify") })
    }

    @Test func eachUserIsCheckedAndNamed() throws {
        let cert = Self.keys + "duis-supplier-TEST-cert.pem"
        let problems = try Self.problems(#"""
            {"users": [{"eui": "90-B3-D5-1F-30-01-00-00", "roles": ["IS", "XX"], "certificate": "\#(cert)"},
                       {"eui": "90-B3-D5-1F-30-01-00-00", "roles": [], "certificate": "\#(cert)"},
                       {"eui": "nope", "roles": ["GS"], "certificate": "/nonexistent.pem"}]}
            """#)
        #expect(problems.contains { $0.contains("duis.users[0].roles: 'XX' is none of IS, ES, GS, ED, GT, RSA, OU") }, "\(problems)")
        #expect(problems.contains { $0.contains("duis.users[1].eui: 90-B3-D5-1F-30-01-00-00 is listed twice") }, "\(problems)")
        #expect(problems.contains { $0.contains("duis.users[1].roles: list at least one") }, "\(problems)")
        #expect(problems.contains { $0.contains("duis.users[2].eui: 'nope' is not an EUI-64") }, "\(problems)")
        let unknown = try Self.problems(#"{"users": [{"eui": "90-B3-D5-1F-30-01-00-00", "roles": ["IS"], "certificate": "x", "role": "IS"}]}"#)
        #expect(unknown.contains { $0.contains("unknown key in a DUIS user") }, "\(unknown)")
    }

    @Test func filesThatAreNotP256KeysAreProblems() throws {
        let (_, unreadable) = try Self.credentials(#"{"users": [{"eui": "90-B3-D5-1F-30-01-00-00", "roles": ["IS"], "certificate": "/nonexistent.pem"}]}"#)
        #expect(unreadable.contains { $0.contains("duis.users[0].certificate: cannot read /nonexistent.pem") }, "\(unreadable)")
        // A private key where a certificate belongs, and a certificate where the private key belongs.
        let (_, wrong) = try Self.credentials(#"""
            {"users": [{"eui": "90-B3-D5-1F-30-01-00-00", "roles": ["IS"], "certificate": "\#(Self.keys)duis-supplier-TEST-private.pem"}],
             "signingKey": "\#(Self.keys)dcc-xml-sign-TEST-cert.pem"}
            """#)
        #expect(wrong.contains { $0.contains("duis.users[0].certificate:") && $0.contains("no PEM block labelled CERTIFICATE or PUBLIC KEY") }, "\(wrong)")
        #expect(wrong.contains { $0.contains("duis.signingKey:") && $0.contains("no PEM block labelled PRIVATE KEY") }, "\(wrong)")
    }

    @Test func theShippedTestFilesLoadWithIssuerSerialAndKey() throws {
        let (credentials, problems) = try Self.credentials(#"""
            {"signatures": "verify",
             "users": [{"eui": "90-b3-d5-1f-30-01-00-00", "roles": ["IS", "GS"], "certificate": "\#(Self.keys)duis-supplier-TEST-cert.pem"},
                       {"eui": "90-B3-D5-1F-30-02-00-00", "roles": ["ED"], "certificate": "\#(Self.keys)acme-meters-TEST-public.pem"}],
             "signingKey": "\#(Self.keys)dcc-xml-sign-TEST-private.pem", "signingCertificate": "\#(Self.keys)dcc-xml-sign-TEST-cert.pem"}
            """#)
        #expect(problems.isEmpty, "\(problems)")
        let supplier = try #require(credentials.users[EUI64(0x90B3_D51F_3001_0000)])
        #expect(supplier.key.serial == "2001")
        #expect(supplier.key.issuer == "CN=smetsd DUIS supplier TEST,OU=87")
        #expect(supplier.key.publicKey.count == 65 && supplier.key.publicKey.first == 4)
        let bare = try #require(credentials.users[EUI64(0x90B3_D51F_3002_0000)])
        #expect(bare.key.serial == nil, "a bare public key names no certificate")
        #expect(credentials.signingCertificate?.serial == "1001")
        #expect(credentials.signingCertificate?.issuer == "CN=smetsd DCC XML signing TEST,OU=89")

        let trust = try DUISKeys.trustStore(credentials)
        #expect(trust.users[EUI64(0x90B3_D51F_3001_0000)]?.roles == [.importSupplier, .gasSupplier])
        let signer = try #require(try DUISKeys.signer(credentials))
        #expect(signer.serial == "1001")
    }

    /// DCC Boxed's published DCC XML signing certificate (SmartDCCInnovation/dccboxed-signing-tool,
    /// src/main/resources/dsp-xml-sign-90B3D51F30000002-ds.pem): an SMKI-style certificate whose
    /// subject names its EUI in x500UniqueIdentifier. Serial and issuer as Python's `cryptography`
    /// reads them: 50669612984035780968362471400449834504, CN=Z1,OU=07.
    static let dccBoxedCertificate = """
-----BEGIN CERTIFICATE-----
MIIBgTCCASagAwIBAgIQJh6czECnj9E9g7zgfaz+CDAKBggqhkjOPQQDAjAaMQsw
CQYDVQQLDAIwNzELMAkGA1UEAwwCWjEwIBcNMTgwMTAxMDAwMDAwWhgPMjExODAx
MDEwMDAwMDBaMCIxDDAKBgNVBAsMAzEzNzESMBAGA1UELQMJAJCz1R8wAAACMFkw
EwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEy6L/kuNdeoI9d4E40kG8pFJmU7SxSjT0
QusPUx/ubhvf58YPLd4W6KO/A/K7rqNW+Ng2uJJEuTkgXrJJdAcarqNEMEIwHQYD
VR0gAQH/BBMwETAPBg0qhjoAAYSPuQ8BAgEEMBEGA1UdDgQKBAhCAIJI5BLfxjAO
BgNVHQ8BAf8EBAMCB4AwCgYIKoZIzj0EAwIDSQAwRgIhANbCJxDXiUHG7ZYbZHm+
sAhl1ctp853ifd1c9ps260NwAiEAiK3Dwf6rroFd2p0Rv9TceON2KINvNAAAA5QE
XhPLQM0=
-----END CERTIFICATE-----
"""

    @Test func anSMKICertificateBindsItsEUI() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("smetsd-smki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("dcc.pem").path
        try Self.dccBoxedCertificate.write(toFile: path, atomically: true, encoding: .utf8)
        let (credentials, problems) = try Self.credentials(#"{"users": [{"eui": "90-B3-D5-1F-30-00-00-02", "roles": ["OU"], "certificate": "\#(path)"}]}"#)
        #expect(problems.isEmpty, "\(problems)")
        let key = try #require(credentials.users[EUI64(0x90B3_D51F_3000_0002)]?.key)
        #expect(key.serial == "50669612984035780968362471400449834504")
        #expect(key.issuer == "CN=Z1,OU=07")
        #expect(key.subjectEUI == [0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x00, 0x00, 0x02])
        let (_, mismatch) = try Self.credentials(#"{"users": [{"eui": "90-B3-D5-1F-30-01-00-00", "roles": ["OU"], "certificate": "\#(path)"}]}"#)
        #expect(mismatch.contains { $0.contains("the certificate's x500UniqueIdentifier is not 90-B3-D5-1F-30-01-00-00") }, "\(mismatch)")
    }

    @Test func aSigningCertificateOfAnotherKeyIsRefused() throws {
        let (credentials, problems) = try Self.credentials(#"""
            {"signingKey": "\#(Self.keys)dcc-xml-sign-TEST-private.pem", "signingCertificate": "\#(Self.keys)duis-supplier-TEST-cert.pem"}
            """#)
        #expect(problems.isEmpty, "\(problems)")
        #expect(throws: DUISKeys.Problem.self) { try DUISKeys.signer(credentials) }
    }

    @Test func serialsAndNamesAreReadFromDER() {
        #expect(X509Key.decimal([0x03, 0xE9]) == "1001")
        #expect(X509Key.decimal([0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]) == "18446744073709551615")
        #expect(X509Key.decimal([]) == "0")
        #expect(X509Key.dotted([0x55, 0x04, 0x2D]) == "2.5.4.45")
        // Truncated or garbage DER is an error, never a trap.
        for bytes: [UInt8] in [[], [0x30], [0x30, 0x85, 1, 2, 3, 4, 5], [0x30, 0x05, 0x02], [0x1F, 0x01, 0x00]] {
            var reader = DERReader(bytes: bytes[...])
            #expect(throws: X509Error.self) { _ = try reader.expect(0x30, "x").content.count; _ = try reader.next() }
        }
    }
}
