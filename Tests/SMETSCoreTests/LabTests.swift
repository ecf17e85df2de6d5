import Testing
@testable import SMETSCore
import SMETSDCC

@Suite("Lab definition and generator")
struct LabTests {
    func device(_ id: String, _ type: DeviceType, _ model: String, owner: String = "MAP-ALPHA",
                smetsVersion: SMETSVersion? = nil, joined: Bool? = nil) -> DeviceDefinition {
        DeviceDefinition(id: eui(id), type: type, model: model, owner: owner, preNotified: type == .chf ? nil : .smets2,
                         smetsVersion: smetsVersion ?? (type == .chf ? .smets2 : nil), joined: joined)
    }

    func premises(_ id: String, _ devices: [DeviceDefinition]) -> PremisesDefinition {
        PremisesDefinition(id: id, region: .central, devices: devices)
    }

    /// A valid one-premises lab to break in one place per test.
    func validPremises(_ id: String = "P1", prefix: String = "00-DB-00-00-00-00-01") -> PremisesDefinition {
        premises(id, [device("\(prefix)-01", .chf, "northgrid-chf-s2"), device("\(prefix)-02", .esme, "acme-esme"),
                      device("\(prefix)-05", .ppmid, "acme-ppmid-dm", joined: true)])
    }

    @Test("the shipped lab and models have no problems")
    func shippedLabIsValid() throws {
        let models = try shippedModels()
        #expect(models.count >= 8)
        for model in models.values { #expect(model.problems().isEmpty, "\(model.key): \(model.problems())") }
        let lab = try shippedLab()
        #expect(lab.cplRegime == .mp202)
        #expect(lab.premises.count == 2)
        #expect(lab.problems(models: models).isEmpty)
    }

    @Test("the shipped lab starts as described: hubs commissioned, joined devices resolved by MP202", arguments: CPLRegime.allCases)
    func shippedInitialDevices(regime: CPLRegime) throws {
        var lab = try shippedLab()
        lab.cplRegime = regime
        let devices = lab.initialDevices(models: try shippedModels(), join: DCCRules(cpl: try shippedCPL(), regime: regime).joiner)
        let defined = lab.premises.flatMap(\.devices)
        #expect(devices.count == defined.count)
        #expect(Set(devices.map(\.id)) == Set(defined.map(\.id)))
        let byID = Dictionary(uniqueKeysWithValues: devices.map { ($0.id, $0) })

        let hub1 = try #require(byID[eui("00-DB-12-34-56-78-00-01")])
        #expect(hub1.type == .chf && hub1.status == .commissioned && hub1.mode == .smets2 && hub1.smetsVersion == .smets2 && hub1.hub == nil)
        let hub2 = try #require(byID[eui("00-DB-12-34-56-79-00-01")])
        #expect(hub2.mode == .smets1 && hub2.smetsVersion == .smets1 && hub2.region == .south)

        // Pre-notified SMETS1, joined to a SMETS2+ hub: SMETS2+. Under MP202 the DCC commissions it;
        // under the interim solution the SMI does not (MP202 §2, "What is the issue?").
        let wrongly: InventoryStatus = regime == .mp202 ? .commissioned : .installedNotCommissioned
        let ppmid1 = try #require(byID[eui("00-DB-12-34-56-78-00-05")])
        #expect(ppmid1.mode == .smets2 && ppmid1.status == wrongly && ppmid1.hub == hub1.id && ppmid1.preNotified == .smets1)
        // Pre-notified SMETS2+, joined to a SMETS1 hub: SMETS1.
        let ppmid2 = try #require(byID[eui("00-DB-12-34-56-79-00-05")])
        #expect(ppmid2.mode == .smets1 && ppmid2.status == wrongly && ppmid2.hub == hub2.id)
        // Not joined: Whitelisted, undetermined.
        let loose = try #require(byID[eui("00-DB-12-34-56-78-00-07")])
        #expect(loose.status == .whitelisted && loose.mode == .undetermined && loose.hub == nil)

        // Every device the lab joins is commissioned, whatever the regime.
        for device in devices where device.type != .chf && device.hub != nil && ![ppmid1.id, ppmid2.id].contains(device.id) {
            #expect(device.status == .commissioned, "\(device.id) (\(device.modelKey)) is \(device.status) under \(regime)")
            #expect(device.mode == (device.premisesID == "P0001" ? .smets2 : .smets1))
        }
        #expect(devices.filter { $0.hub != nil }.count == defined.filter { $0.joined == true }.count)
    }

    @Test("a duplicate device ID is reported at its second use, naming the first")
    func duplicateDeviceID() throws {
        var second = validPremises("P2", prefix: "00-DB-00-00-00-00-02")
        second.devices[1].id = eui("00-DB-00-00-00-00-01-02")
        let lab = LabDefinition(name: "t", cplRegime: .mp202, premises: [validPremises(), second])
        let problems = lab.problems(models: try shippedModels())
        #expect(problems.count == 1)
        let problem = try #require(problems.first)
        #expect(problem.path == "premises[1].devices[1].id")
        #expect(problem.message.contains("premises[0].devices[1]"))
        #expect(problem.message.contains("unique"))
    }

    @Test("a duplicate premises ID is reported")
    func duplicatePremisesID() throws {
        let lab = LabDefinition(name: "t", cplRegime: .mp202, premises: [validPremises(), validPremises("P1", prefix: "00-DB-00-00-00-00-02")])
        let problems = lab.problems(models: try shippedModels())
        #expect(problems.map(\.path) == ["premises[1].id"])
    }

    @Test("an unknown model is reported with the fix: the file to add and the known models")
    func unknownModel() throws {
        var premises = validPremises()
        premises.devices[1].model = "acme-esme-typo"
        let lab = LabDefinition(name: "t", cplRegime: .mp202, premises: [premises])
        let problems = lab.problems(models: try shippedModels())
        let problem = try #require(problems.first)
        #expect(problems.count == 1)
        #expect(problem.path == "premises[0].devices[1].model")
        #expect(problem.message.contains("unknown model 'acme-esme-typo'"))
        #expect(problem.message.contains("devices/models/acme-esme-typo.json"))
        #expect(problem.message.contains("acme-esme,"))
        #expect(problem.description.hasPrefix("premises[0].devices[1].model: "))
    }

    @Test("a premises needs exactly one hub", arguments: [0, 2])
    func hubCount(hubs: Int) throws {
        var premises = validPremises()
        premises.devices.removeFirst()
        for index in 0..<hubs { premises.devices.append(device("00-DB-00-00-00-00-01-1\(index)", .chf, "northgrid-chf-s2")) }
        let problems = LabDefinition(name: "t", cplRegime: .mp202, premises: [premises]).problems(models: try shippedModels())
        let problem = try #require(problems.first)
        #expect(problems.count == 1)
        #expect(problem.path == "premises[0].devices")
        #expect(problem.message.contains("exactly one CHF"))
        #expect(problem.message.contains("found \(hubs)"))
    }

    @Test("MP202 §2: a PPMID's pre-notification must name its SMETS version")
    func ppmidPreNotificationNamesTheVersion() throws {
        var premises = validPremises()
        premises.devices[2].preNotified = nil
        let problems = LabDefinition(name: "t", cplRegime: .mp202, premises: [premises]).problems(models: try shippedModels())
        let problem = try #require(problems.first)
        #expect(problems.count == 1)
        #expect(problem.path == "premises[0].devices[2].preNotified")
        #expect(problem.message.contains("MP202"))
        // Another device type takes its model's own version when none is given.
        premises.devices[2].preNotified = .smets1
        premises.devices[1].preNotified = nil
        #expect(LabDefinition(name: "t", cplRegime: .mp202, premises: [premises]).problems(models: try shippedModels()).isEmpty)
    }

    @Test("a device whose type is not its model's is reported")
    func typeMismatch() throws {
        var premises = validPremises()
        premises.devices[1].type = .gsme
        let problems = LabDefinition(name: "t", cplRegime: .mp202, premises: [premises]).problems(models: try shippedModels())
        let problem = try #require(problems.first)
        #expect(problems.count == 1)
        #expect(problem.path == "premises[0].devices[1].type")
        #expect(problem.message.contains("GSME"))
        #expect(problem.message.contains("'acme-esme' is a ESME"))
    }

    @Test("SMETS versions belong to hubs, and every device names its owner")
    func smetsVersionAndOwner() throws {
        var premises = validPremises()
        premises.devices[0].smetsVersion = nil
        premises.devices[1].smetsVersion = .smets1
        premises.devices[2].owner = ""
        premises.id = ""
        let problems = LabDefinition(name: "t", cplRegime: .mp202, premises: [premises]).problems(models: try shippedModels())
        #expect(Set(problems.map(\.path)) == ["premises[0].id", "premises[0].devices[0].smetsVersion",
                                              "premises[0].devices[1].smetsVersion", "premises[0].devices[2].owner"])
    }

    // MARK: the generator

    func generatorModels() throws -> LabGenerator.Models {
        let models = try shippedModels()
        func pick(_ key: String) throws -> DeviceModel { try #require(models[key]) }
        return LabGenerator.Models(
            smets2: .init(hub: try pick("northgrid-chf-s2"), esme: try pick("acme-esme"), gsme: try pick("acme-gsme"),
                          gpf: try pick("northgrid-gpf"), ppmid: try pick("acme-ppmid-dm"), ihd: try pick("brightview-ihd")),
            smets1: .init(hub: try pick("northgrid-chf-s1"), esme: try pick("acme-esme-s1"), gsme: try pick("acme-gsme-s1"),
                          gpf: try pick("northgrid-gpf-s1"), ppmid: try pick("acme-ppmid-dm"), ihd: try pick("brightview-ihd-s1")))
    }

    @Test("generated premises: unique IDs, every device joined and commissioned, odd premises on SMETS1", arguments: CPLRegime.allCases)
    func generator(regime: CPLRegime) throws {
        let models = try generatorModels()
        let cpl = try shippedCPL()
        var seen: Set<EUI64> = []
        var premisesIDs: Set<String> = []
        for index in 0..<300 {
            let devices = LabGenerator.devices(index: index, models: models, owners: ["MAP-A", "MAP-B"], join: DCCRules(cpl: cpl, regime: regime).joiner)
            #expect(devices.count == 6)
            #expect(devices.map(\.type) == [.chf, .esme, .gsme, .gpf, .ppmid, .ihd])
            for device in devices { #expect(seen.insert(device.id).inserted, "\(device.id) generated twice") }
            let hub = try #require(devices.first)
            let version: SMETSVersion = index % 2 == 1 ? .smets1 : .smets2
            #expect(hub.smetsVersion == version)
            #expect(hub.mode == SMETSMode(version))
            #expect(hub.status == .commissioned)
            #expect(hub.owner == (index % 2 == 0 ? "MAP-A" : "MAP-B"))
            #expect(premisesIDs.insert(hub.premisesID).inserted)
            #expect(devices.allSatisfy { $0.premisesID == hub.premisesID && $0.region == CSPRegion.allCases[index % 3] })
            for device in devices.dropFirst() {
                #expect(device.hub == hub.id)
                #expect(device.mode == SMETSMode(version))
                #expect(device.status == .commissioned, "\(device.modelKey) in premises \(index) is \(device.status) under \(regime)")
            }
            #expect(devices.allSatisfy { $0.id.rawValue & 0xFFFF_F000_0000_0000 == LabGenerator.idBase })
        }
        #expect(LabGenerator.premisesID(1) == "G000001")
        #expect(LabGenerator.premisesID(0xABCDEF) == "GABCDEF")
        // Generated IDs do not collide with the shipped lab's.
        let shipped = try shippedLab().premises.flatMap(\.devices).map(\.id)
        #expect(seen.isDisjoint(with: shipped))
    }

    @Test("generated presented firmware follows the regime on SMETS1 premises")
    func generatorPresentedFirmware() throws {
        let models = try generatorModels()
        let cpl = try shippedCPL()
        let odd = LabGenerator.devices(index: 1, models: models, owners: [], join: DCCRules(cpl: cpl, regime: .interim).joiner)
        let ppmid = try #require(odd.first { $0.type == .ppmid })
        #expect(ppmid.owner == "MAP-GEN")
        #expect(cpl.presentedFirmware(model: try #require(models.smets1).ppmid, firmware: ppmid.firmwareVersion, mode: ppmid.mode, regime: .interim) == firmware("0F020300"))
    }
}

@Suite("Device identity: EUI-64 and firmware versions")
struct IdentityTests {
    @Test("EUI-64 parses dashes, colons and bare hex, in either case", arguments: [
        "00-DB-12-34-56-78-90-A1", "00:DB:12:34:56:78:90:A1", "00DB1234567890A1", "00db1234567890a1", "00-db-12-34-56-78-90-a1",
    ])
    func euiParses(text: String) throws {
        let id = try #require(EUI64(text))
        #expect(id.rawValue == 0x00DB_1234_5678_90A1)
        #expect(id.description == "00-DB-12-34-56-78-90-A1")
    }

    @Test("EUI-64 refuses wrong lengths and characters", arguments: [
        "", "00-DB-12-34-56-78-90", "00-DB-12-34-56-78-90-A1-FF", "00DB1234567890A", "00DB1234567890A12",
        "00-DB-12-34-56-78-90-AG", "00 DB 12 34 56 78 90 A1", "+0DB1234567890A1", "0xDB1234567890A1", "00-DB-12-34-56-78-90-Ａ1",
    ])
    func euiRefuses(text: String) {
        #expect(EUI64(text) == nil)
    }

    @Test("EUI-64 formats with leading zeros and round-trips through Codable")
    func euiFormat() throws {
        #expect(EUI64.zero.description == "00-00-00-00-00-00-00-00")
        #expect(EUI64(.max).description == "FF-FF-FF-FF-FF-FF-FF-FF")
        #expect(EUI64(0x0102_0304_0506_0708).description == "01-02-03-04-05-06-07-08")
        #expect(EUI64(1) < EUI64(2))
        var generator = SplitMix64(seed: 11)
        for _ in 0..<1_000 {
            let id = EUI64(generator.next())
            #expect(EUI64(id.description) == id)
        }
    }

    @Test("firmware versions are 8 uppercase hex digits; parsing accepts 0x and short forms")
    func firmwareHex() {
        #expect(FirmwareVersion(0x0102_030A).hex == "0102030A")
        #expect(FirmwareVersion(0).hex == "00000000")
        #expect(FirmwareVersion(.max).description == "FFFFFFFF")
        #expect(FirmwareVersion(hex: "0102030a")?.rawValue == 0x0102_030A)
        #expect(FirmwareVersion(hex: "0x0F020300")?.rawValue == 0x0F02_0300)
        #expect(FirmwareVersion(hex: "0XFF")?.rawValue == 0xFF)
        #expect(FirmwareVersion(hex: "1")?.rawValue == 1)
        for bad in ["", "0x", "123456789", "0102030G", "-1020300", "+1020300", " 1020300", "0x-1"] {
            #expect(FirmwareVersion(hex: bad) == nil, "'\(bad)'")
        }
        #expect(FirmwareVersion(hex: "01020300")! < FirmwareVersion(hex: "01030000")!)
    }

    @Test("device types and statuses parse by name, case-insensitively")
    func names() {
        #expect(DeviceType(name: "ppmid") == .ppmid)
        #expect(DeviceType(name: "CHF")?.rawValue == 2)
        #expect(DeviceType(name: "Type2") == nil)
        #expect(DeviceType.ihd.rawValue == 6)
        #expect(InventoryStatus(text: "installednotcommissioned") == .installedNotCommissioned)
        #expect(InventoryStatus(text: "Installed") == nil)
        #expect(CSPRegion(text: "SOUTH") == .south)
    }
}
