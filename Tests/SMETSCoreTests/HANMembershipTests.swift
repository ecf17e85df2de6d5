import Testing
@testable import SMETSCore
import SMETSDCC

@Suite("Joining and leaving the HAN")
struct HANMembershipTests {
    // MARK: the dual-mode PPMID under both regimes

    @Test("a dual-mode PPMID pre-notified SMETS2+ joins a SMETS1 hub in SMETS1 mode (MP202: real firmware)")
    func dualModeJoinsSMETS1HubUnderMP202() throws {
        let model = try shippedModel("acme-ppmid-dm")
        let chf = hub(.smets1)
        let outcome = try DCCRules(cpl: try shippedCPL(), regime: .mp202).join(device: member(model, preNotified: .smets2), hub: chf, model: model)
        #expect(outcome.device.mode == .smets1)
        #expect(outcome.device.hub == chf.id)
        #expect(outcome.device.status == .commissioned)
        #expect(outcome.transitions == [.installedNotCommissioned, .commissioned])
        #expect(outcome.presentedFirmware == firmware("01020300"))
        #expect(outcome.device.firmwareVersion == firmware("01020300"), "the real firmware does not change")
        #expect(outcome.device.preNotified == .smets2, "the pre-notification is kept as it was")
    }

    @Test("a dual-mode PPMID pre-notified SMETS1 joins a SMETS2+ hub in SMETS2+ mode")
    func dualModeJoinsSMETS2HubUnderMP202() throws {
        let model = try shippedModel("acme-ppmid-dm")
        let chf = hub(.smets2)
        let outcome = try DCCRules(cpl: try shippedCPL(), regime: .mp202).join(device: member(model, preNotified: .smets1), hub: chf, model: model)
        #expect(outcome.device.mode == .smets2)
        #expect(outcome.device.hub == chf.id)
        #expect(outcome.device.status == .commissioned)
        #expect(outcome.transitions == [.installedNotCommissioned, .commissioned])
        #expect(outcome.presentedFirmware == firmware("01020300"))
    }

    @Test("interim regime: in SMETS1 mode the PPMID presents the fictitious 0F020300 of the shipped CPL row")
    func interimPresentsFictitiousFirmwareInSMETS1() throws {
        let model = try shippedModel("acme-ppmid-dm")
        let cpl = try shippedCPL()
        let row = try #require(cpl.entries.first { $0.fictitiousFor == firmware("01020300") })
        #expect(row.firmwareVersion == firmware("0F020300"))

        // Pre-notified as the hub is: under the interim solution the SMI commissions only then.
        let outcome = try DCCRules(cpl: cpl, regime: .interim).join(device: member(model, preNotified: .smets1), hub: hub(.smets1), model: model)
        #expect(outcome.device.mode == .smets1)
        #expect(outcome.presentedFirmware == firmware("0F020300"))
        #expect(outcome.device.firmwareVersion == firmware("01020300"), "the device stores the real version")
        #expect(outcome.device.status == .commissioned)
        #expect(outcome.transitions == [.installedNotCommissioned, .commissioned])
    }

    @Test("interim regime: in SMETS2+ mode the PPMID presents its real firmware")
    func interimPresentsRealFirmwareInSMETS2() throws {
        let model = try shippedModel("acme-ppmid-dm")
        let outcome = try DCCRules(cpl: try shippedCPL(), regime: .interim).join(device: member(model, preNotified: .smets2), hub: hub(.smets2), model: model)
        #expect(outcome.device.mode == .smets2)
        #expect(outcome.presentedFirmware == firmware("01020300"))
        #expect(outcome.device.status == .commissioned)
    }

    @Test("interim regime: each real version maps to its own fictitious row")
    func interimSecondFirmware() throws {
        let model = try shippedModel("acme-ppmid-dm")
        let device = member(model, preNotified: .smets1, firmwareVersion: firmware("01030000"))
        let outcome = try DCCRules(cpl: try shippedCPL(), regime: .interim).join(device: device, hub: hub(.smets1), model: model)
        #expect(outcome.presentedFirmware == firmware("0F030000"))
        #expect(outcome.device.status == .commissioned)
    }

    @Test("leaving resets hub and mode; re-joining the other kind of hub flips the mode", arguments: CPLRegime.allCases)
    func leaveThenRejoinOtherHub(regime: CPLRegime) throws {
        let model = try shippedModel("acme-ppmid-dm")
        let cpl = try shippedCPL()
        let s1 = hub(.smets1, id: "00-DB-00-00-00-00-00-01")
        let s2 = hub(.smets2, id: "00-DB-00-00-00-00-00-02")

        let first = try DCCRules(cpl: cpl, regime: regime).join(device: member(model, preNotified: .smets2), hub: s1, model: model)
        #expect(first.device.mode == .smets1)

        let left = try HANMembership.leave(device: first.device)
        #expect(left.hub == nil)
        #expect(left.mode == .undetermined)
        #expect(left.status == .whitelisted)

        let second = try DCCRules(cpl: cpl, regime: regime).join(device: left, hub: s2, model: model)
        #expect(second.device.mode == .smets2)
        #expect(second.device.hub == s2.id)
        #expect(second.device.status == .commissioned)
        #expect(second.transitions == [.installedNotCommissioned, .commissioned])
        #expect(second.presentedFirmware == firmware("01020300"))

        let back = try DCCRules(cpl: cpl, regime: regime).join(device: try HANMembership.leave(device: second.device), hub: s1, model: model)
        #expect(back.device.mode == .smets1)
        #expect(back.presentedFirmware == firmware(regime == .interim ? "0F020300" : "01020300"))
    }

    @Test("leaving when not joined is refused as not_joined")
    func leaveWhenNotJoined() throws {
        let model = try shippedModel("acme-ppmid-dm")
        let error = #expect(throws: DomainError.self) { try HANMembership.leave(device: member(model, preNotified: .smets2)) }
        #expect(error?.kind == .notJoined)
        #expect(error?.reason == "not_joined")
    }

    @Test("re-joining while Commissioned passes through no status; from Suspended it goes straight to Commissioned")
    func rejoinTransitions() throws {
        let model = try shippedModel("acme-ppmid-dm")
        let cpl = try shippedCPL()
        let commissioned = member(model, preNotified: .smets2, status: .commissioned)
        #expect(try DCCRules(cpl: cpl, regime: .mp202).join(device: commissioned, hub: hub(.smets2), model: model).transitions == [])

        let suspended = member(model, preNotified: .smets2, status: .suspended)
        let outcome = try DCCRules(cpl: cpl, regime: .mp202).join(device: suspended, hub: hub(.smets2), model: model)
        #expect(outcome.transitions == [.commissioned])

        let installed = member(model, preNotified: .smets2, status: .installedNotCommissioned)
        #expect(try DCCRules(cpl: cpl, regime: .mp202).join(device: installed, hub: hub(.smets2), model: model).transitions == [.commissioned])
    }

    // MARK: Suspended

    @Test("firmware that is not on the CPL leaves the device Suspended", arguments: CPLRegime.allCases)
    func suspendedWhenFirmwareUnlisted(regime: CPLRegime) throws {
        let model = try shippedModel("acme-ppmid-dm")
        let cpl = try shippedCPL()
        for version in SMETSVersion.allCases {
            let device = member(model, preNotified: version, firmwareVersion: firmware("01FFFFFF"))
            let outcome = try DCCRules(cpl: cpl, regime: regime).join(device: device, hub: hub(version), model: model)
            #expect(outcome.device.status == .suspended)
            #expect(outcome.transitions == [.installedNotCommissioned, .suspended])
            #expect(outcome.presentedFirmware == firmware("01FFFFFF"))
            #expect(outcome.device.hub != nil, "a Suspended device is still on the HAN")
        }
    }

    @Test("the regimes do not mix: a fictitious row does not list a device under MP202, nor a real SMETS1 row under interim")
    func regimesDoNotMix() throws {
        let model = try shippedModel("acme-ppmid-dm")
        let cpl = try shippedCPL()
        // A device really running 0F020300 presents it under MP202; only the interim regime's row lists it.
        let odd = member(model, preNotified: .smets1, firmwareVersion: firmware("0F020300"))
        #expect(try DCCRules(cpl: cpl, regime: .mp202).join(device: odd, hub: hub(.smets1), model: model).device.status == .suspended)
        #expect(!cpl.lists(model: model, presented: firmware("0F020300"), mode: .smets1, regime: .mp202))
        #expect(cpl.lists(model: model, presented: firmware("0F020300"), mode: .smets1, regime: .interim))
        #expect(!cpl.lists(model: model, presented: firmware("01020300"), mode: .smets1, regime: .interim))
        #expect(cpl.lists(model: model, presented: firmware("01020300"), mode: .smets1, regime: .mp202))
        #expect(!cpl.lists(model: model, presented: firmware("01020300"), mode: .undetermined, regime: .mp202))
    }

    @Test("interim regime: a dual-mode PPMID version without a fictitious row is Suspended in SMETS1 mode")
    func interimWithoutFictitiousRow() throws {
        let model = try shippedModel("acme-ppmid-dm")
        let cpl = CPL(entries: [
            CPLEntry(manufacturerId: "1234", modelId: "0000A001", hardwareVersion: 1, firmwareVersion: firmware("01020300"),
                     smetsVersion: .smets2, gbcsVersion: "4.0", deviceType: .ppmid),
            CPLEntry(manufacturerId: "1234", modelId: "0000A001", hardwareVersion: 1, firmwareVersion: firmware("01020300"),
                     smetsVersion: .smets1, gbcsVersion: "", deviceType: .ppmid),
        ])
        let outcome = try DCCRules(cpl: cpl, regime: .interim).join(device: member(model, preNotified: .smets1), hub: hub(.smets1), model: model)
        #expect(outcome.presentedFirmware == firmware("01020300"))
        #expect(outcome.device.status == .suspended)
    }

    @Test("the hardware version is part of the identity")
    func hardwareVersionMatters() throws {
        var model = try shippedModel("acme-ppmid-dm")
        model.hardwareVersion = 9
        let outcome = try DCCRules(cpl: try shippedCPL(), regime: .mp202).join(device: member(model, preNotified: .smets2), hub: hub(.smets2), model: model)
        #expect(outcome.device.status == .suspended)
    }

    /// Only PPMIDs have the interim regime's fictitious SMETS1 rows: a SMETS1 meter, GPF or IHD is
    /// listed in a SMETS1 system by its real firmware, as the shipped CPL lists it.
    @Test("interim regime: other devices of a SMETS1 system are commissioned by their real firmware",
          arguments: ["acme-esme-s1", "acme-gsme-s1", "northgrid-gpf-s1", "brightview-ihd-s1"])
    func interimOtherDevicesInSMETS1(key: String) throws {
        let model = try shippedModel(key)
        let cpl = try shippedCPL()
        let outcome = try DCCRules(cpl: cpl, regime: .interim).join(device: member(model, preNotified: .smets1), hub: hub(.smets1), model: model)
        #expect(outcome.device.mode == .smets1)
        #expect(outcome.presentedFirmware == model.firmwareVersion)
        #expect(outcome.device.status == .commissioned, "\(key) in a SMETS1 system under the interim regime")
    }

    // MARK: refusals

    @Test("joining something that is not a CHF is refused as not_a_hub")
    func refusedNotAHub() throws {
        let ppmid = try shippedModel("acme-ppmid-dm")
        let esme = member(try shippedModel("acme-esme"), preNotified: .smets2, id: "00-DB-00-00-00-00-00-02")
        let error = #expect(throws: DomainError.self) {
            try DCCRules(cpl: try shippedCPL(), regime: .mp202).join(device: member(ppmid, preNotified: .smets2), hub: esme, model: ppmid)
        }
        #expect(error?.kind == .notAHub)
        #expect(error?.reason == "not_a_hub")

        var versionless = hub(.smets2)
        versionless.smetsVersion = nil
        let second = #expect(throws: DomainError.self) {
            try DCCRules(cpl: try shippedCPL(), regime: .mp202).join(device: member(ppmid, preNotified: .smets2), hub: versionless, model: ppmid)
        }
        #expect(second?.kind == .notAHub)
    }

    @Test("a hub does not join another hub")
    func refusedHubAsMember() throws {
        let model = try shippedModel("northgrid-chf-s2")
        let other = hub(.smets2, id: "00-DB-00-00-00-00-00-09")
        let error = #expect(throws: DomainError.self) {
            try DCCRules(cpl: try shippedCPL(), regime: .mp202).join(device: other, hub: hub(.smets2), model: model)
        }
        #expect(error?.kind == .notJoinable)
    }

    @Test("joining the hub of other premises is refused as not_joinable, naming both premises")
    func refusedOtherPremises() throws {
        let model = try shippedModel("acme-ppmid-dm")
        let error = #expect(throws: DomainError.self) {
            try DCCRules(cpl: try shippedCPL(), regime: .mp202).join(device: member(model, preNotified: .smets2, premises: "P1"), hub: hub(.smets2, premises: "P2"),
                                                                     model: model)
        }
        #expect(error?.kind == .notJoinable)
        #expect(error?.message.contains("P1") == true)
        #expect(error?.message.contains("P2") == true)
    }

    @Test("a device that is not yet Whitelisted (or is gone) cannot join",
          arguments: [InventoryStatus.pending, .decommissioned, .withdrawn, .recovery, .recovered, .notApplicable])
    func refusedStatus(status: InventoryStatus) throws {
        let model = try shippedModel("acme-ppmid-dm")
        let error = #expect(throws: DomainError.self) {
            try DCCRules(cpl: try shippedCPL(), regime: .mp202).join(device: member(model, preNotified: .smets2, status: status), hub: hub(.smets2), model: model)
        }
        #expect(error?.kind == .notJoinable)
        #expect(error?.message.contains(status.rawValue) == true)
    }

    @Test("a model without the hub's SMETS version is refused, naming the model and what it supports")
    func refusedModelWithoutVersion() throws {
        let model = try shippedModel("brightview-ppmid")
        #expect(model.smetsVersions == [.smets2])
        let error = #expect(throws: DomainError.self) {
            try DCCRules(cpl: try shippedCPL(), regime: .mp202).join(device: member(model, preNotified: .smets2), hub: hub(.smets1), model: model)
        }
        #expect(error?.kind == .notJoinable)
        #expect(error?.message.contains("brightview-ppmid") == true)
        #expect(error?.message.contains("SMETS2+") == true)
        // The same device joins a SMETS2+ hub.
        let outcome = try DCCRules(cpl: try shippedCPL(), regime: .mp202).join(device: member(model, preNotified: .smets2), hub: hub(.smets2), model: model)
        #expect(outcome.device.status == .commissioned)
    }

    // MARK: firmware changes

    @Test("after a firmware change the status follows the CPL", arguments: CPLRegime.allCases)
    func statusAfterFirmwareChange(regime: CPLRegime) throws {
        let model = try shippedModel("acme-ppmid-dm")
        let cpl = try shippedCPL()
        for version in SMETSVersion.allCases {
            // Pre-notified as the hub is, so that the interim regime commissions it too.
            var device = try DCCRules(cpl: cpl, regime: regime).join(device: member(model, preNotified: version), hub: hub(version), model: model).device
            device.firmwareVersion = firmware("01030000")
            #expect(DCCRules(cpl: cpl, regime: regime).statusAfterFirmwareChange(device, model: model, hubVersion: hub(version).smetsVersion) == .commissioned)
            device.firmwareVersion = firmware("01040000")
            #expect(DCCRules(cpl: cpl, regime: regime).statusAfterFirmwareChange(device, model: model, hubVersion: hub(version).smetsVersion) == .suspended)
            device.status = .suspended
            device.firmwareVersion = firmware("01020300")
            #expect(DCCRules(cpl: cpl, regime: regime).statusAfterFirmwareChange(device, model: model, hubVersion: hub(version).smetsVersion) == .commissioned)
        }
        // A device off the HAN keeps its status.
        let loose = member(model, preNotified: .smets2, firmwareVersion: firmware("01040000"))
        #expect(DCCRules(cpl: cpl, regime: regime).statusAfterFirmwareChange(loose, model: model, hubVersion: nil) == .whitelisted)
    }
}
