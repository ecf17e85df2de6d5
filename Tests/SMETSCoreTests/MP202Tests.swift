import Testing
@testable import SMETSCore

@Suite("MP202 mode resolution")
struct MP202Tests {
    /// The four rows of the MP202 table: the hub's SMETS version decides, whatever was pre-notified.
    @Test("the table's four rows", arguments: [
        (SMETSVersion.smets1, SMETSVersion.smets1, SMETSMode.smets1),
        (.smets1, .smets2, .smets2),
        (.smets2, .smets1, .smets1),
        (.smets2, .smets2, .smets2),
    ])
    func table(preNotified: SMETSVersion, hub: SMETSVersion, expected: SMETSMode) {
        #expect(MP202.resolvedMode(preNotified: preNotified, hub: hub) == expected)
    }

    @Test("requirement 7: OTA only in a SMETS2+ system, refused with a reason otherwise")
    func otaRefusal() throws {
        #expect(MP202.otaRefusal(mode: .smets2) == nil)
        let smets1 = try #require(MP202.otaRefusal(mode: .smets1))
        #expect(smets1.contains("requirement 7"))
        #expect(smets1.contains("SMETS1"))
        #expect(MP202.otaRefusal(mode: .undetermined) != nil)
    }

    @Test("SMETS versions and modes parse and name themselves as the API does")
    func versionText() {
        #expect(SMETSVersion(text: "smets1") == .smets1)
        #expect(SMETSVersion(text: "SMETS2") == .smets2)
        #expect(SMETSVersion(text: "SMETS2+") == .smets2)
        #expect(SMETSVersion(text: "SMETS3") == nil)
        #expect(SMETSVersion(text: "") == nil)
        #expect(SMETSMode(.smets1).version == .smets1)
        #expect(SMETSMode.undetermined.version == nil)
        #expect(SMETSMode.smets2.name == "SMETS2+")
        #expect(SMETSMode.undetermined.name == "undetermined")
    }
}
