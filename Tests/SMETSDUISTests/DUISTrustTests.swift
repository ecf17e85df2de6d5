import Crypto
import Foundation
import SMETSCore
import Testing
@testable import SMETSDUIS

/// duis.md §8 steps 2 and 6 as the trust store decides them, without the daemon.
@Suite struct DUISTrustTests {
    static let supplier = EUI64(0x90B3_D51F_3001_0000), other = EUI64(0x90B3_D51F_3003_0000)
    let supplierKey = P256.Signing.PrivateKey(), otherKey = P256.Signing.PrivateKey()

    var store: DUISTrustStore {
        DUISTrustStore(users: [
            DUISUser(eui: Self.supplier, roles: [.importSupplier, .gasSupplier], key: supplierKey.publicKey, certificateSerial: "2001"),
            DUISUser(eui: Self.other, roles: [.otherUser], key: otherKey.publicKey, certificateSerial: nil),
        ])
    }

    func document(_ originator: EUI64, counter: Int = 1, variant: String = "11.2", body: String = "<sr:ReadFirmwareVersion/>",
                  cv: Int = 1, signedBy key: P256.Signing.PrivateKey?, serial: String? = "2001") throws -> (DUISRequest, XMLElement) {
        let reference = variant.split(separator: ".").prefix(2).joined(separator: ".")
        var xml = #"<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header>"#
            + "<sr:RequestID>\(originator):00-DB-12-34-56-78-00-02:\(counter)</sr:RequestID><sr:CommandVariant>\(cv)</sr:CommandVariant>"
            + "<sr:ServiceReference>\(reference)</sr:ServiceReference><sr:ServiceReferenceVariant>\(variant)</sr:ServiceReferenceVariant>"
            + "</sr:Header><sr:Body>\(body)</sr:Body></sr:Request>"
        if let key { xml = try XMLSignature.sign(xml, key: key, issuer: "CN=U1,OU=07", serial: serial) }
        return try DUISParser.parseDocument(Array(xml.utf8))
    }

    @Test func aUserSigningWithItsKeyPasses() throws {
        let (request, root) = try document(Self.supplier, signedBy: supplierKey)
        #expect(store.authenticate(request, document: root) == nil)
        #expect(store.authorise(request) == nil)
    }

    @Test func everyAuthenticationFailureIsE1() throws {
        let cases: [(DUISRequest, XMLElement)] = [
            try document(EUI64(0x90B3_D51F_3009_0000), signedBy: supplierKey),  // not a user
            try document(Self.supplier, signedBy: nil),                          // unsigned
            try document(Self.supplier, signedBy: otherKey),                     // another key
            try document(Self.supplier, signedBy: supplierKey, serial: "2002"),  // another certificate
        ]
        for (request, root) in cases {
            #expect(store.authenticate(request, document: root)?.code == .invalidUser)
        }
    }

    @Test func rolesAreTheVariantsOrE2() throws {
        let activate = "<sr:ActivateFirmware><sr:FirmwareHash>\(String(repeating: "AB", count: 32))</sr:FirmwareHash></sr:ActivateFirmware>"
        let (critical, _) = try document(Self.other, variant: "11.3", body: activate, cv: 4, signedBy: otherKey)
        #expect(store.authorise(critical)?.code == .roleNotAllowed, "11.3 is for IS and GS")
        let (read, _) = try document(Self.other, signedBy: otherKey)
        #expect(store.authorise(read) == nil, "11.2 is for all seven roles")
        let (supplierCritical, _) = try document(Self.supplier, variant: "11.3", body: activate, cv: 4, signedBy: supplierKey)
        #expect(store.authorise(supplierCritical) == nil)
    }
}
