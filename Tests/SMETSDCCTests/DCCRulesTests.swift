import SMETSCore
import Testing
@testable import SMETSDCC

/// Fixtures written from the seeds, independent of the shipped lab: one dual-mode PPMID model with
/// a real version on both rows and the interim regime's fictitious SMETS1 row, a SMETS2+-only IHD
/// without OTA, a SMETS2+-only ESME.
enum Fixture {
    static let ppmidModel = DeviceModel(key: "dm", type: .ppmid, manufacturer: .init(code: "1234", name: "Acme"), modelId: "0000A001",
                                        modelName: "DM", hardwareVersion: 1, firmwareVersion: FirmwareVersion(hex: "01020300")!,
                                        otaImageType: "0001", smetsVersions: [.smets1, .smets2])
    static let ihdModel = DeviceModel(key: "ihd", type: .ihd, manufacturer: .init(code: "5678", name: "Bright"), modelId: "0000B001",
                                      modelName: "IHD", hardwareVersion: 2, firmwareVersion: FirmwareVersion(hex: "00070002")!,
                                      otaImageType: "0002", smetsVersions: [.smets2], technicalSpecification: "IHDTS v5.0")
    static let esmeModel = DeviceModel(key: "esme", type: .esme, manufacturer: .init(code: "1234", name: "Acme"), modelId: "0000E001",
                                       modelName: "ESME", hardwareVersion: 3, firmwareVersion: FirmwareVersion(hex: "03010000")!,
                                       otaImageType: "0003", smetsVersions: [.smets2])
    static let cpl = try! CPL.parse(csv: """
        \(CPL.header)
        1234,0000A001,1,01020300,SMETS2+,4.0,PPMID,
        1234,0000A001,1,01020300,SMETS1,,PPMID,
        1234,0000A001,1,0F020300,SMETS1,,PPMID,01020300
        1234,0000A001,1,01030000,SMETS2+,4.0,PPMID,
        1234,0000A001,1,01030000,SMETS1,,PPMID,
        1234,0000A001,1,0F030000,SMETS1,,PPMID,01030000
        5678,0000B001,2,00070002,SMETS2+,4.0,IHD,
        1234,0000E001,3,03010000,SMETS2+,4.0,ESME,
        """)

    static func hub(_ version: SMETSVersion) -> Device {
        Device(id: EUI64(0x00DB_0000_0000_0001), type: .chf, premisesID: "P1", modelKey: "chf", owner: "MAP", preNotified: version,
               status: .commissioned, mode: SMETSMode(version), firmwareVersion: FirmwareVersion(0x0200_0100), smetsVersion: version, region: .north)
    }

    static func device(_ model: DeviceModel, preNotified: SMETSVersion, status: InventoryStatus = .whitelisted) -> Device {
        Device(id: EUI64(0x00DB_0000_0000_0005), type: model.type, premisesID: "P1", modelKey: model.key, owner: "MAP",
               preNotified: preNotified, status: status, firmwareVersion: model.firmwareVersion, region: .north)
    }

    static func joined(_ model: DeviceModel, preNotified: SMETSVersion, hub: SMETSVersion, regime: CPLRegime) throws -> Device {
        try DCCRules(cpl: cpl, regime: regime).join(device: device(model, preNotified: preNotified), hub: Fixture.hub(hub), model: model).device
    }
}

@Suite("The DCC's rules (MP202, SEC Appendix Z 3.13)")
struct DCCRulesTests {
    @Test("MP202 §3 table: under MP202 the hub decides a dual-mode PPMID's version, in the SMI too", arguments: [
        (SMETSVersion.smets1, SMETSVersion.smets1, SMETSVersion.smets1), (.smets1, .smets2, .smets2),
        (.smets2, .smets1, .smets1), (.smets2, .smets2, .smets2),
    ])
    func mp202Table(preNotified: SMETSVersion, hubVersion: SMETSVersion, resulting: SMETSVersion) throws {
        let rules = DCCRules(cpl: Fixture.cpl, regime: .mp202)
        let outcome = try rules.join(device: Fixture.device(Fixture.ppmidModel, preNotified: preNotified), hub: Fixture.hub(hubVersion), model: Fixture.ppmidModel)
        #expect(outcome.device.mode == SMETSMode(resulting))
        #expect(rules.inventoryVersion(of: outcome.device, hubVersion: hubVersion) == resulting)
        #expect(outcome.device.status == .commissioned)
        #expect(outcome.transitions == [.installedNotCommissioned, .commissioned])
        #expect(outcome.presentedFirmware == FirmwareVersion(hex: "01020300"), "MP202: both rows carry the real version")
    }

    @Test("MP202 §2 'What is the issue': under interim a PPMID on a hub of the other version is not commissioned")
    func interimFailureIsReproduced() throws {
        let rules = DCCRules(cpl: Fixture.cpl, regime: .interim)
        let outcome = try rules.join(device: Fixture.device(Fixture.ppmidModel, preNotified: .smets1), hub: Fixture.hub(.smets2), model: Fixture.ppmidModel)
        #expect(outcome.device.mode == .smets2, "the device itself works in the hub's system")
        #expect(outcome.device.status == .installedNotCommissioned)
        #expect(outcome.transitions == [.installedNotCommissioned])
        #expect(rules.inventoryVersion(of: outcome.device, hubVersion: .smets2) == .smets1, "the SMI keeps the pre-notified version")
        let mismatch = try #require(rules.interimMismatch(outcome.device, hubVersion: .smets2))
        #expect(mismatch.contains("cannot be the target of any service request"))
        for request in ServiceRequestKind.allCases where request != .readInventory {
            let refusal = rules.refusal(for: request, device: outcome.device, model: Fixture.ppmidModel, hub: Fixture.hub(.smets2))
            #expect(refusal?.reason == .interimMismatch, "\(request) must be refused")
        }
        #expect(rules.refusal(for: .readInventory, device: outcome.device, model: Fixture.ppmidModel, hub: Fixture.hub(.smets2)) == nil)
    }

    @Test("MP202 §2: the manual SMI change commissions the PPMID; there is nothing to correct otherwise")
    func inventoryCorrection() throws {
        let rules = DCCRules(cpl: Fixture.cpl, regime: .interim)
        let stuck = try Fixture.joined(Fixture.ppmidModel, preNotified: .smets1, hub: .smets2, regime: .interim)
        let corrected = try rules.correctInventory(device: stuck, hub: Fixture.hub(.smets2), model: Fixture.ppmidModel)
        #expect(corrected.device.preNotified == .smets2)
        #expect(corrected.device.status == .commissioned)
        #expect(rules.interimMismatch(corrected.device, hubVersion: .smets2) == nil)
        #expect(rules.refusal(for: .firmwareUpdate, device: corrected.device, model: Fixture.ppmidModel, hub: Fixture.hub(.smets2)) == nil)
        #expect(throws: DomainError.self) { try rules.correctInventory(device: corrected.device, hub: Fixture.hub(.smets2), model: Fixture.ppmidModel) }
        let unjoined = Fixture.device(Fixture.ppmidModel, preNotified: .smets1)
        #expect(throws: DomainError.self) { try rules.correctInventory(device: unjoined, hub: Fixture.hub(.smets2), model: Fixture.ppmidModel) }
    }

    @Test("interim, matching versions: a SMETS1 PPMID on a SMETS1 hub is commissioned with the fictitious identity")
    func interimMatchingUsesFictitiousIdentity() throws {
        let rules = DCCRules(cpl: Fixture.cpl, regime: .interim)
        let outcome = try rules.join(device: Fixture.device(Fixture.ppmidModel, preNotified: .smets1), hub: Fixture.hub(.smets1), model: Fixture.ppmidModel)
        #expect(outcome.device.status == .commissioned)
        #expect(outcome.presentedFirmware == FirmwareVersion(hex: "0F020300"), "the SMI holds the fictitious version")
        #expect(outcome.device.firmwareVersion == FirmwareVersion(hex: "01020300"), "the device runs, and reports, the real one")
    }

    @Test("SEC Appendix Z 3.13: only PPMIDs are dual-mode; a SMETS2+ IHD or ESME cannot join a SMETS1 hub")
    func onlyPPMIDsAreDualMode() throws {
        let rules = DCCRules(cpl: Fixture.cpl, regime: .mp202)
        for model in [Fixture.ihdModel, Fixture.esmeModel] {
            let error = #expect(throws: DomainError.self) {
                try rules.join(device: Fixture.device(model, preNotified: .smets2), hub: Fixture.hub(.smets1), model: model)
            }
            #expect(error?.kind == .notJoinable)
            #expect(error?.message.contains("only PPMIDs are dual-mode") == true)
            let joined = try rules.join(device: Fixture.device(model, preNotified: .smets2), hub: Fixture.hub(.smets2), model: model)
            #expect(joined.device.mode == .smets2)
            #expect(joined.device.status == .commissioned)
        }
    }

    @Test("a join refuses non-hubs, other premises and devices the SMI does not hold as joinable")
    func joinRefusals() {
        let rules = DCCRules(cpl: Fixture.cpl, regime: .mp202)
        let ppmid = Fixture.device(Fixture.ppmidModel, preNotified: .smets2)
        #expect(throws: DomainError.self) { try rules.join(device: ppmid, hub: Fixture.device(Fixture.esmeModel, preNotified: .smets2), model: Fixture.ppmidModel) }
        var elsewhere = ppmid
        elsewhere.premisesID = "P2"
        #expect(throws: DomainError.self) { try rules.join(device: elsewhere, hub: Fixture.hub(.smets2), model: Fixture.ppmidModel) }
        let withdrawn = Fixture.device(Fixture.ppmidModel, preNotified: .smets2, status: .withdrawn)
        #expect(throws: DomainError.self) { try rules.join(device: withdrawn, hub: Fixture.hub(.smets2), model: Fixture.ppmidModel) }
        #expect(rules.refusal(for: .join, device: withdrawn, model: Fixture.ppmidModel, hub: nil)?.reason == .inventoryStatus)
    }

    @Test("an identity off the CPL is Suspended in the SMI; the device keeps running it")
    func offCPLIsSuspended() throws {
        let rules = DCCRules(cpl: Fixture.cpl, regime: .mp202)
        var device = try Fixture.joined(Fixture.ppmidModel, preNotified: .smets2, hub: .smets2, regime: .mp202)
        device.firmwareVersion = FirmwareVersion(0x0104_0000)
        #expect(rules.statusAfterFirmwareChange(device, model: Fixture.ppmidModel, hubVersion: .smets2) == .suspended)
        device.status = .suspended
        device.firmwareVersion = FirmwareVersion(hex: "01030000")!
        #expect(rules.statusAfterFirmwareChange(device, model: Fixture.ppmidModel, hubVersion: .smets2) == .commissioned)
    }

    @Test("MP202 §7: Requirement 7 refuses OTA to a dual-mode PPMID in a SMETS1 system under MP202 only")
    func requirement7BelongsToMP202() throws {
        let mp202 = DCCRules(cpl: Fixture.cpl, regime: .mp202)
        let inSMETS1 = try Fixture.joined(Fixture.ppmidModel, preNotified: .smets1, hub: .smets1, regime: .mp202)
        #expect(mp202.refusal(for: .firmwareUpdate, device: inSMETS1, model: Fixture.ppmidModel, hub: Fixture.hub(.smets1))?.reason == .requirement7)
        let checks = mp202.firmwareChecks(fileVersion: FirmwareVersion(hex: "01030000")!, device: inSMETS1, model: Fixture.ppmidModel, hub: Fixture.hub(.smets1))
        #expect(checks.first { $0.name == "mp202Requirement7" }?.outcome == .fail)

        let interim = DCCRules(cpl: Fixture.cpl, regime: .interim)
        let interimSMETS1 = try Fixture.joined(Fixture.ppmidModel, preNotified: .smets1, hub: .smets1, regime: .interim)
        #expect(interim.refusal(for: .firmwareUpdate, device: interimSMETS1, model: Fixture.ppmidModel, hub: Fixture.hub(.smets1)) == nil)
        let interimChecks = interim.firmwareChecks(fileVersion: FirmwareVersion(hex: "01030000")!, device: interimSMETS1,
                                                   model: Fixture.ppmidModel, hub: Fixture.hub(.smets1))
        #expect(interimChecks.first { $0.name == "mp202Requirement7" }?.outcome == .notApplicable)
        let cpl = try #require(interimChecks.first { $0.name == "cpl" })
        #expect(cpl.outcome == .pass)
        #expect(cpl.reason.contains("0F030000"), "the CPL's SMETS1 row (fictitious version) is the identity: \(cpl.reason)")
    }

    @Test("the DCC refuses an image whose version is not on the CPL for the device's identity")
    func cplCheckOnUpdate() throws {
        let rules = DCCRules(cpl: Fixture.cpl, regime: .mp202)
        let device = try Fixture.joined(Fixture.ppmidModel, preNotified: .smets2, hub: .smets2, regime: .mp202)
        let checks = rules.firmwareChecks(fileVersion: FirmwareVersion(0x0104_0000), device: device, model: Fixture.ppmidModel, hub: Fixture.hub(.smets2))
        #expect(checks.map(\.name) == ["dccEligibility", "mp202Requirement7", "cpl"])
        #expect(checks.last?.outcome == .fail)
        let listed = rules.firmwareChecks(fileVersion: FirmwareVersion(hex: "01030000")!, device: device, model: Fixture.ppmidModel, hub: Fixture.hub(.smets2))
        #expect(listed.allSatisfy { $0.passed })
    }

    @Test("SECMP0056 footnotes: an IHD has no OTA, and the DCC says so before anything reaches the hub")
    func ihdHasNoOTA() throws {
        let rules = DCCRules(cpl: Fixture.cpl, regime: .mp202)
        #expect(!Fixture.ihdModel.hasOTA)
        let ihd = try Fixture.joined(Fixture.ihdModel, preNotified: .smets2, hub: .smets2, regime: .mp202)
        let refusal = rules.refusal(for: .firmwareUpdate, device: ihd, model: Fixture.ihdModel, hub: Fixture.hub(.smets2))
        #expect(refusal?.reason == .noOTA)
        let checks = rules.firmwareChecks(fileVersion: FirmwareVersion(hex: "00070003")!, device: ihd, model: Fixture.ihdModel, hub: Fixture.hub(.smets2))
        #expect(checks.count == 1)
        #expect(checks.first?.outcome == .fail)
    }

    @Test("firmware goes only to displays that joined and are commissioned or suspended")
    func firmwareEligibility() throws {
        let rules = DCCRules(cpl: Fixture.cpl, regime: .mp202)
        let esme = try Fixture.joined(Fixture.esmeModel, preNotified: .smets2, hub: .smets2, regime: .mp202)
        #expect(rules.refusal(for: .firmwareUpdate, device: esme, model: Fixture.esmeModel, hub: Fixture.hub(.smets2))?.reason == .deviceType)
        let unjoined = Fixture.device(Fixture.ppmidModel, preNotified: .smets2)
        #expect(rules.refusal(for: .firmwareUpdate, device: unjoined, model: Fixture.ppmidModel, hub: nil)?.reason == .inventoryStatus)
        var decommissioned = try Fixture.joined(Fixture.ppmidModel, preNotified: .smets2, hub: .smets2, regime: .mp202)
        decommissioned.status = .decommissioned
        #expect(rules.refusal(for: .firmwareUpdate, device: decommissioned, model: Fixture.ppmidModel, hub: Fixture.hub(.smets2))?.reason == .inventoryStatus)
        #expect(rules.refusal(for: .topUp, device: decommissioned, model: Fixture.ppmidModel, hub: Fixture.hub(.smets2))?.reason == .inventoryStatus)
    }
}

@Suite("Device models: what a display clears and whether it has OTA (SECMP0056)")
struct DeviceModelSECMP0056Tests {
    @Test("a display built before IHDTS / PPMIDTS v5.0 ignores Change of Tenancy and clears nothing")
    func preV5DisplaysIgnoreChangeOfTenancy() {
        var model = Fixture.ihdModel
        model.keeps = [.consumptionHistory, .supplierMessages]
        #expect(model.handlesChangeOfTenancy)
        #expect(model.clearsSet == [.consumptionHistory, .supplierMessages])
        model.technicalSpecification = "IHDTS v4.2"
        #expect(!model.handlesChangeOfTenancy)
        #expect(model.clearsSet.isEmpty, "it keeps the data but ignores the command")
        #expect(model.keepsSet == [.consumptionHistory, .supplierMessages])
    }

    @Test("a model may keep top-up history and not clear it: beyond SMETS, a matter for supplier and manufacturer")
    func keepsAndClearsApart() {
        var model = Fixture.ppmidModel
        model.keeps = [.consumptionHistory, .supplierMessages, .topUpLog, .debtLog]
        model.clears = [.consumptionHistory, .supplierMessages]
        #expect(model.clearsSet == [.consumptionHistory, .supplierMessages])
        #expect(model.problems().isEmpty)
        model.clears = [.consumerData]
        #expect(model.problems().contains { $0.hasPrefix("clears:") })
    }

    @Test("OTA: PPMIDs have it unless the model says not; IHDs never")
    func otaFlag() {
        #expect(Fixture.ppmidModel.hasOTA)
        var inField = Fixture.ppmidModel
        inField.ota = false
        #expect(!inField.hasOTA)
        var ihd = Fixture.ihdModel
        ihd.ota = true
        #expect(ihd.problems().contains { $0.hasPrefix("ota:") })
        var badSpec = Fixture.ihdModel
        badSpec.technicalSpecification = "IHDTS"
        #expect(badSpec.problems().contains { $0.hasPrefix("technicalSpecification:") })
    }
}
