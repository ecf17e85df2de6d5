import Testing
@testable import SMETSCore

@Suite("Central Products List")
struct CPLTests {
    static let header = "manufacturer_id,model_id,hardware_version,firmware_version,smets_chts_version,gbcs_version,device_type,fictitious_for"

    /// The error `csv` is refused with.
    func parseError(_ csv: String) -> CPLParseError? {
        return #expect(throws: CPLParseError.self) { try CPL.parse(csv: csv) }
    }

    @Test("the shipped devices/cpl.csv parses, with both regimes' rows for the dual-mode PPMID")
    func shippedCPL() throws {
        let cpl = try SMETSCoreTests.shippedCPL()
        #expect(cpl.entries.count >= 18)
        let ppmidRows = cpl.entries.filter { $0.modelId == "0000A001" }
        #expect(ppmidRows.count >= 6)
        #expect(ppmidRows.allSatisfy { $0.deviceType == .ppmid && $0.manufacturerId == "1234" && $0.hardwareVersion == 1 })
        let fictitious = ppmidRows.filter { $0.fictitiousFor != nil }
        #expect(Set(fictitious.map(\.firmwareVersion)).isSuperset(of: [firmware("0F020300"), firmware("0F030000")]))
        #expect(Set(fictitious.compactMap(\.fictitiousFor)).isSuperset(of: [firmware("01020300"), firmware("01030000")]))
        #expect(fictitious.allSatisfy { $0.smetsVersion == .smets1 })
        // Every fictitious row stands for a real version that has its MP202 rows too.
        for row in fictitious {
            let real = try #require(row.fictitiousFor)
            #expect(ppmidRows.contains { $0.firmwareVersion == real && $0.smetsVersion == .smets1 && $0.fictitiousFor == nil })
            #expect(ppmidRows.contains { $0.firmwareVersion == real && $0.smetsVersion == .smets2 })
        }
        let hub = try #require(cpl.entries.first { $0.modelId == "0000C002" })
        #expect(hub.deviceType == .chf)
        #expect(hub.smetsVersion == .smets2)
        #expect(hub.gbcsVersion == "4.0")
        #expect(hub.firmwareVersion == firmware("02000100"))
        #expect(hub.fictitiousFor == nil)
        // Every shipped model's own firmware is listed for each SMETS version it supports (MP202 rows).
        for model in try shippedModels().values {
            for version in model.smetsVersions {
                #expect(cpl.lists(model: model, presented: model.firmwareVersion, mode: SMETSMode(version), regime: .mp202),
                        "\(model.key) \(version) is not on the shipped CPL")
            }
        }
    }

    @Test("comments, blank lines and blanks around fields are ignored; IDs are uppercased")
    func lenientLayout() throws {
        let csv = """
            # a comment

            \(Self.header)
              # another
            abcd , 0000a00f ,7,0102030a,smets2,4.0,ppmid,

            """
        let cpl = try CPL.parse(csv: csv)
        let entry = try #require(cpl.entries.first)
        #expect(cpl.entries.count == 1)
        #expect(entry.manufacturerId == "ABCD")
        #expect(entry.modelId == "0000A00F")
        #expect(entry.hardwareVersion == 7)
        #expect(entry.firmwareVersion == FirmwareVersion(0x0102_030A))
        #expect(entry.smetsVersion == .smets2)
        #expect(entry.deviceType == .ppmid)
    }

    @Test("CRLF line endings parse like LF")
    func crlf() throws {
        let csv = "# comment\r\n\(Self.header)\r\n1234,0000A001,1,01020300,SMETS1,,PPMID,\r\n1234,0000A001,1,0F020300,SMETS1,,PPMID,01020300\r\n"
        let cpl = try CPL.parse(csv: csv)
        #expect(cpl.entries.count == 2)
        #expect(cpl.entries.last?.fictitiousFor == firmware("01020300"))
    }

    @Test("a wrong header is refused on its own line")
    func wrongHeader() throws {
        let error = try #require(parseError("# comment\n\nmanufacturer,model_id\n1234,0000A001,1,01020300,SMETS1,,PPMID,\n"))
        #expect(error.line == 3)
        #expect(error.message.contains("header"))
        #expect(error.description.hasPrefix("line 3: "))
    }

    @Test("a file with no header is refused")
    func empty() throws {
        #expect(try #require(parseError("")).line == 1)
        #expect(try #require(parseError("# only a comment\n")).line == 1)
    }

    @Test("bad rows are refused naming the line and the field", arguments: [
        ("12G4,0000A001,1,01020300,SMETS1,,PPMID,", "manufacturer_id"),
        ("123,0000A001,1,01020300,SMETS1,,PPMID,", "manufacturer_id"),
        ("1234,0000A0X1,1,01020300,SMETS1,,PPMID,", "model_id"),
        ("1234,0000A001,one,01020300,SMETS1,,PPMID,", "hardware_version"),
        ("1234,0000A001,70000,01020300,SMETS1,,PPMID,", "hardware_version"),
        ("1234,0000A001,1,0102030Z,SMETS1,,PPMID,", "firmware_version"),
        ("1234,0000A001,1,010203,SMETS1,,PPMID,", "firmware_version"),
        ("1234,0000A001,1,01020300,SMETS3,,PPMID,", "smets_chts_version"),
        ("1234,0000A001,1,01020300,SMETS1,,TOASTER,", "device_type"),
        ("1234,0000A001,1,0F020300,SMETS1,,PPMID,0102030G", "fictitious_for"),
        ("1234,0000A001,1,0F020300,SMETS1,,PPMID,0102", "fictitious_for"),
        ("1234,0000A001,1,0F020300,SMETS2+,4.0,PPMID,01020300", "fictitious_for"),
        ("1234,0000A001,1,01020300,SMETS1,,PPMID", "expected 8 fields, found 7"),
        ("1234,0000A001,1,01020300,SMETS1,,PPMID,,", "expected 8 fields, found 9"),
    ])
    func badRow(row: String, named: String) throws {
        let csv = "# The lab's CPL\n\(Self.header)\n1234,0000A001,1,01020300,SMETS2+,4.0,PPMID,\n\n\(row)\n1234,0000A001,1,01020300,SMETS1,,PPMID,\n"
        let error = try #require(parseError(csv))
        #expect(error.line == 5)
        #expect(error.message.contains(named), "\(error)")
    }

    @Test("presented firmware: only a dual-mode PPMID in SMETS1 mode under interim presents the fictitious version")
    func presentedFirmware() throws {
        let cpl = try SMETSCoreTests.shippedCPL()
        let ppmid = try shippedModel("acme-ppmid-dm")
        let real = firmware("01020300")
        #expect(cpl.presentedFirmware(model: ppmid, firmware: real, mode: .smets1, regime: .interim) == firmware("0F020300"))
        #expect(cpl.presentedFirmware(model: ppmid, firmware: real, mode: .smets2, regime: .interim) == real)
        #expect(cpl.presentedFirmware(model: ppmid, firmware: real, mode: .undetermined, regime: .interim) == real)
        #expect(cpl.presentedFirmware(model: ppmid, firmware: real, mode: .smets1, regime: .mp202) == real)
        #expect(cpl.presentedFirmware(model: ppmid, firmware: firmware("01FFFFFF"), mode: .smets1, regime: .interim) == firmware("01FFFFFF"))
        let single = try shippedModel("brightview-ppmid")
        #expect(!single.isDualMode)
        #expect(cpl.presentedFirmware(model: single, firmware: single.firmwareVersion, mode: .smets1, regime: .interim) == single.firmwareVersion)
        // Another model's fictitious row is not this model's.
        var other = ppmid
        other.modelId = "0000A009"
        #expect(cpl.presentedFirmware(model: other, firmware: real, mode: .smets1, regime: .interim) == real)
    }

    @Test("lists matches manufacturer and model IDs whatever their case")
    func listsIgnoresCase() throws {
        let cpl = try SMETSCoreTests.shippedCPL()
        var model = try shippedModel("northgrid-chf-s2")
        model.manufacturer.code = "9abc"
        model.modelId = "0000c002"
        #expect(cpl.lists(model: model, presented: firmware("02000100"), mode: .smets2, regime: .mp202))
        #expect(!cpl.lists(model: model, presented: firmware("02000100"), mode: .smets1, regime: .mp202))
    }
}

@Suite("CPL validation (SEC Appendix Z 3.13)")
struct CPLValidationTests {
    static let header = CPL.header

    @Test("a row repeating another's six-part key is refused, naming both lines")
    func duplicatesAreRefused() {
        let error = #expect(throws: CPLParseError.self) {
            try CPL.parse(csv: "\(Self.header)\n1234,0000A001,1,01020300,SMETS2+,4.0,PPMID,\n1234,0000a001,1,01020300,SMETS2+,4.1,PPMID,\n")
        }
        #expect(error?.line == 3)
        #expect(error?.message.contains("duplicate of line 2") == true)
    }

    @Test("rows that differ in SMETS version or device type are not duplicates")
    func keyHasSixParts() throws {
        let cpl = try CPL.parse(csv: "\(Self.header)\n1234,0000A001,1,01020300,SMETS2+,4.0,PPMID,\n1234,0000A001,1,01020300,SMETS1,,PPMID,\n1234,0000A001,1,01020300,SMETS2+,4.0,IHD,\n")
        #expect(cpl.entries.count == 3)
    }

    @Test("Appendix Z 3.13(b): a fictitious version equal to a real version of the model is refused")
    func fictitiousMustDifferFromReal() {
        let error = #expect(throws: CPLParseError.self) {
            try CPL.parse(csv: "\(Self.header)\n1234,0000A001,1,01030000,SMETS2+,4.0,PPMID,\n1234,0000A001,1,01030000,SMETS1,,PPMID,01020300\n")
        }
        #expect(error?.line == 3)
        #expect(error?.message.contains("3.13(b)") == true)
    }

    @Test("lookups respect the device type: a PPMID row does not list an IHD model with the same IDs")
    func lookupsRespectDeviceType() throws {
        let cpl = try CPL.parse(csv: "\(Self.header)\n1234,0000A001,1,01020300,SMETS2+,4.0,PPMID,\n")
        var model = try shippedModel("acme-ppmid-dm")
        #expect(cpl.lists(model: model, presented: firmware("01020300"), mode: .smets2, regime: .mp202))
        model.type = .ihd
        #expect(!cpl.lists(model: model, presented: firmware("01020300"), mode: .smets2, regime: .mp202))
    }
}
