import Testing
@testable import SMETSCore

/// A verifier for tests: a signature is valid when it is `FakeKey.sign(message)` for this key's seed.
struct FakeKey: SignatureVerifier {
    var seed: UInt8
    static func sign(_ message: [UInt8], seed: UInt8) -> [UInt8] {
        let sum = message.reduce(UInt8(0)) { $0 &+ $1 }
        return (0..<64).map { UInt8(truncatingIfNeeded: $0) &+ sum &+ seed }
    }
    func isValidSignature(_ signature: [UInt8], of message: [UInt8]) -> Bool { signature == Self.sign(message, seed: seed) }
}

enum FirmwareFixtures {
    static let ppmid = DeviceModel(
        key: "acme-ppmid-dm", type: .ppmid, manufacturer: .init(code: "1234", name: "ACME Meters"), modelId: "0000A001",
        modelName: "ACME DualMode PPMID", hardwareVersion: 1, firmwareVersion: FirmwareVersion(0x0102_0300), otaImageType: "0001",
        smetsVersions: [.smets1, .smets2], signingKey: "keys/acme-meters-TEST-public.pem", maxImageBlockBytes: 200)
    static let ihd = DeviceModel(
        key: "brightview-ihd", type: .ihd, manufacturer: .init(code: "5678", name: "Brightview Displays"), modelId: "0000B001",
        modelName: "Brightview IHD 7", hardwareVersion: 2, firmwareVersion: FirmwareVersion(0x0007_0002), otaImageType: "0002",
        smetsVersions: [.smets1, .smets2], signingKey: nil, downgradeAllowed: true)
    static let singleModePPMID = DeviceModel(
        key: "brightview-ppmid", type: .ppmid, manufacturer: .init(code: "5678", name: "Brightview Displays"), modelId: "0000B002",
        modelName: "Brightview PPMID S2", hardwareVersion: 1, firmwareVersion: FirmwareVersion(0x0005_0001), otaImageType: "0003",
        smetsVersions: [.smets2])

    static let cpl = try! CPL.parse(csv: """
        manufacturer_id,model_id,hardware_version,firmware_version,smets_chts_version,gbcs_version,device_type,fictitious_for
        1234,0000A001,1,01020300,SMETS2+,4.0,PPMID,
        1234,0000A001,1,01020300,SMETS1,,PPMID,
        1234,0000A001,1,0F020300,SMETS1,,PPMID,01020300
        1234,0000A001,1,01030000,SMETS2+,4.0,PPMID,
        1234,0000A001,1,01030000,SMETS1,,PPMID,
        1234,0000A001,1,0F030000,SMETS1,,PPMID,01030000
        5678,0000B001,2,00070002,SMETS2+,4.0,IHD,
        5678,0000B001,2,00070002,SMETS1,,IHD,
        5678,0000B001,2,00070003,SMETS2+,4.0,IHD,
        5678,0000B002,1,00050001,SMETS2+,4.0,PPMID,
        """)

    static let device = EUI64(0x00DB_1234_5678_0005)

    static func candidate(
        manufacturer: UInt16 = 0x1234, type: UInt16 = 0x0001, version: UInt32 = 0x0103_0000, hardware: (UInt16, UInt16)? = nil,
        destination: EUI64? = nil, size: Int = 1000, signedBy seed: UInt8? = 1
    ) -> FirmwareCandidate {
        let content = Array(0..<UInt8(100)) + [UInt8(truncatingIfNeeded: version)]
        return FirmwareCandidate(manufacturerCode: manufacturer, imageType: type, fileVersion: FirmwareVersion(version),
                                 hardwareVersions: hardware.map { (minimum: $0.0, maximum: $0.1) }, destination: destination, fileSize: size,
                                 signedContent: content, signature: seed.map { FakeKey.sign(content, seed: $0) })
    }

    static func verdict(
        _ image: FirmwareCandidate, model: DeviceModel = ppmid, device: EUI64? = device, mode: SMETSMode = .smets2,
        current: FirmwareVersion? = nil, key: SigningKey = .loaded(FakeKey(seed: 1)), limit: Int = 1 << 20
    ) -> FirmwareVerdict {
        FirmwareRules.check(image, format: "test image", for: FirmwareTarget(model: model, device: device, mode: mode, currentFirmware: current ?? model.firmwareVersion),
                            maxImageBytes: limit, key: key)
    }
}

extension FirmwareVerdict {
    func outcome(_ name: String) -> FirmwareCheck.Outcome? { checks.first { $0.name == name }?.outcome }
    func reason(_ name: String) -> String { checks.first { $0.name == name }?.reason ?? "" }
}

struct FirmwareRulesTests {
    typealias F = FirmwareFixtures

    @Test func aGoodImageForADualModePPMIDInSMETS2PassesEveryCheck() {
        let verdict = F.verdict(F.candidate())
        #expect(verdict.accepted, "\(verdict.summary)")
        #expect(verdict.checks.map(\.name) == FirmwareRules.checkNames)
        #expect(verdict.outcome("signature") == .pass)
        #expect(verdict.outcome("hardwareVersion") == .notApplicable)
        #expect(verdict.outcome("destination") == .notApplicable)
    }

    @Test("the device knows neither the CPL nor its SMETS system: a version off the CPL, in SMETS1, passes")
    func theDeviceChecksOnlyWhatHardwareChecks() {
        // MP202 Requirement 7 and the CPL are the DCC's checks (SMETSDCC); a rig serving a good image
        // straight over the HAN link meets only these.
        let offCPL = F.verdict(F.candidate(version: 0x0104_0000), mode: .smets1, current: FirmwareVersion(0x0102_0300))
        #expect(offCPL.accepted, "\(offCPL.summary)")
        #expect(offCPL.outcome("cpl") == nil)
        #expect(offCPL.outcome("mp202Requirement7") == nil)
        #expect(F.verdict(F.candidate(), mode: .undetermined).accepted)
    }

    @Test func manufacturerCode() {
        #expect(F.verdict(F.candidate(manufacturer: 0x9999)).outcome("manufacturer") == .fail)
        #expect(F.verdict(F.candidate(manufacturer: 0x9999)).reason("manufacturer") == "9999 is not ACME Meters's code 1234")
        // The wildcard: only when a signature by the model's key must tie the image to the manufacturer.
        #expect(F.verdict(F.candidate(manufacturer: 0xFFFF)).outcome("manufacturer") == .pass)
        let keyless = F.verdict(F.candidate(manufacturer: 0xFFFF, type: 0x0002, version: 0x0007_0003, signedBy: nil), model: F.ihd, key: .none)
        #expect(keyless.outcome("manufacturer") == .fail)
    }

    @Test func imageType() {
        #expect(F.verdict(F.candidate(type: 0x0002)).outcome("imageType") == .fail)
        #expect(F.verdict(F.candidate(type: 0xFFC0)).reason("imageType").contains("reserved"))
    }

    @Test func hardwareVersionRange() {
        #expect(F.verdict(F.candidate(hardware: (1, 3))).outcome("hardwareVersion") == .pass)
        #expect(F.verdict(F.candidate(hardware: (1, 1))).outcome("hardwareVersion") == .pass)
        #expect(F.verdict(F.candidate(hardware: (2, 3))).outcome("hardwareVersion") == .fail)
        #expect(F.verdict(F.candidate(hardware: (3, 2))).outcome("hardwareVersion") == .fail)
    }

    @Test func destination() {
        #expect(F.verdict(F.candidate(destination: F.device)).outcome("destination") == .pass)
        #expect(F.verdict(F.candidate(destination: EUI64(1))).outcome("destination") == .fail)
        #expect(F.verdict(F.candidate(destination: EUI64(1)), device: nil).outcome("destination") == .notApplicable)
    }

    @Test func signature() {
        #expect(F.verdict(F.candidate(signedBy: 2)).outcome("signature") == .fail)
        #expect(F.verdict(F.candidate(signedBy: nil)).reason("signature").contains("unsigned"))
        #expect(F.verdict(F.candidate(), key: .unavailable("cannot read keys/x.pem")).outcome("signature") == .fail)
        #expect(F.verdict(F.candidate(), key: .none).outcome("signature") == .notApplicable)
        var short = F.candidate()
        short.signature = [1, 2, 3]
        #expect(F.verdict(short).reason("signature").contains("not 64"))
        // The signature covers the content: change a byte and it fails.
        var altered = F.candidate()
        altered.signedContent[0] ^= 0xFF
        #expect(F.verdict(altered).outcome("signature") == .fail)
    }

    @Test func downgrades() {
        let older = F.candidate(version: 0x0102_0300)
        #expect(F.verdict(older, current: FirmwareVersion(0x0103_0000)).outcome("downgrade") == .fail)
        #expect(F.verdict(older, current: FirmwareVersion(0x0102_0300)).outcome("downgrade") == .fail)  // not newer
        let ihdOlder = F.candidate(manufacturer: 0x5678, type: 0x0002, version: 0x0007_0002, signedBy: nil)
        let allowed = F.verdict(ihdOlder, model: F.ihd, current: FirmwareVersion(0x0007_0003), key: .none)
        #expect(allowed.outcome("downgrade") == .pass)
        #expect(allowed.accepted)
    }

    @Test func sizeLimit() {
        #expect(F.verdict(F.candidate(size: 2000), limit: 1999).outcome("size") == .fail)
        #expect(F.verdict(F.candidate(size: 2000), limit: 2000).outcome("size") == .pass)
    }

    @Test func everyFailureIsReportedAtOnce() {
        let verdict = F.verdict(F.candidate(manufacturer: 0x9999, type: 0x0009, version: 0x0001_0000, hardware: (5, 6), destination: EUI64(1), signedBy: 3),
                                mode: .smets1, limit: 10)
        #expect(Set(verdict.failures.map(\.name)) == Set(FirmwareRules.checkNames.filter { $0 != "format" }))
        #expect(verdict.summary.contains("signature: the signature does not verify"))
    }

    @Test func unreadableFileFailsTheFormatCheck() {
        let verdict = FirmwareRules.unreadable("bad_magic: ...")
        #expect(!verdict.accepted)
        #expect(verdict.checks.map(\.name) == ["format"])
    }
}

struct FirmwareDownloadTests {
    let image = OfferedImage(manufacturerCode: 0x1234, imageType: 1, fileVersion: 0x0103_0000, imageSize: 10)

    @Test func blocksAdvanceTheFileOffset() {
        var download = FirmwareDownload(server: EUI64(9), image: image)
        #expect(download.nextBlockSize(maxImageBlockBytes: 4) == 4)
        #expect(download.accept(manufacturerCode: 0x1234, imageType: 1, fileVersion: 0x0103_0000, fileOffset: 0, data: [0, 1, 2, 3]) == .accepted(complete: false))
        #expect(download.fileOffset == 4)
        // A repeated or out-of-order block is ignored; the offset stays.
        if case .ignored = download.accept(manufacturerCode: 0x1234, imageType: 1, fileVersion: 0x0103_0000, fileOffset: 0, data: [0]) {} else { Issue.record("expected ignored") }
        if case .ignored = download.accept(manufacturerCode: 0x1234, imageType: 2, fileVersion: 0x0103_0000, fileOffset: 4, data: [0]) {} else { Issue.record("expected ignored") }
        #expect(download.accept(manufacturerCode: 0x1234, imageType: 1, fileVersion: 0x0103_0000, fileOffset: 4, data: [4, 5, 6, 7]) == .accepted(complete: false))
        #expect(download.nextBlockSize(maxImageBlockBytes: 200) == 2)
        if case .invalid = download.accept(manufacturerCode: 0x1234, imageType: 1, fileVersion: 0x0103_0000, fileOffset: 8, data: [8, 9, 10]) {} else { Issue.record("expected invalid") }
        if case .invalid = download.accept(manufacturerCode: 0x1234, imageType: 1, fileVersion: 0x0103_0000, fileOffset: 8, data: []) {} else { Issue.record("expected invalid") }
        #expect(download.accept(manufacturerCode: 0x1234, imageType: 1, fileVersion: 0x0103_0000, fileOffset: 8, data: [8, 9]) == .accepted(complete: true))
        #expect(download.received == Array(0..<10))
        #expect(download.isComplete)
    }

    @Test func upgradeTimes() {
        let now = Timestamp(zigbeeUTC: 1_000_000)
        #expect(UpgradeSchedule.decide(currentTime: 0, upgradeTime: 0, now: now) == .now)
        #expect(UpgradeSchedule.decide(currentTime: 0, upgradeTime: 0xFFFF_FFFF, now: now) == .waitForCommand)
        #expect(UpgradeSchedule.decide(currentTime: 0, upgradeTime: 999_999, now: now) == .now)
        #expect(UpgradeSchedule.decide(currentTime: 0, upgradeTime: 1_000_600, now: now) == .at(Timestamp(zigbeeUTC: 1_000_600)))
        // Relative to the server's current time, whatever the two clocks say.
        #expect(UpgradeSchedule.decide(currentTime: 5_000, upgradeTime: 5_060, now: now) == .at(now.adding(seconds: 60)))
        #expect(UpgradeSchedule.decide(currentTime: 5_000, upgradeTime: 5_000, now: now) == .now)
    }
}
