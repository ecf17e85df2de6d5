import Foundation
import SMETSClient
import SMETSCore
import SMETSRPC
import SMETSWire
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A test rig on the HAN link: HELLO, then DATA frames both ways.
final class HANRig {
    let fd: Int32
    let node: EUI64
    let device: EUI64
    private var decoder = HANFrameDecoder()
    private(set) var welcome: HANWelcome?
    private var sequence: UInt8 = 0

    init(path: String, node: EUI64 = EUI64(0x00DB_FFFF_0000_0001), device: EUI64) throws {
        self.node = node
        self.device = device
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
        write(.hello(HANHello(rigNode: node, target: device)))
        guard case .welcome(let welcome)? = try next() else { throw POSIXError(.EPROTO) }
        self.welcome = welcome
    }

    func write(_ frame: HANFrame) {
        let bytes = frame.encoded()
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written <= 0 { return }
            offset += written
        }
    }

    /// Sends a ZCL frame to the device on `cluster`.
    func send(_ frame: ZCLFrame, cluster: UInt16 = ZCLClusterID.otaUpgrade) {
        write(.data(HANData(source: node, destination: device, clusterID: cluster, zcl: frame.encoded())))
    }

    func send<C: ZCLClusterCommand>(_ command: C) {
        sequence &+= 1
        send(ZCLFrame(command, sequenceNumber: sequence, disableDefaultResponse: true))
    }

    /// The next frame, or nil after `timeout` seconds.
    func next(timeout: Double = 10) throws -> HANFrame? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let frame = try decoder.next() { return frame }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return nil }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(left * 1000)) > 0 else { return nil }
            var buffer = [UInt8](repeating: 0, count: 8192)
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { return nil }
            decoder.append(buffer[0..<count])
        }
    }

    /// The next ZCL frame on `cluster` from the device, skipping others.
    func nextZCL(cluster: UInt16 = ZCLClusterID.otaUpgrade, timeout: Double = 10) throws -> ZCLFrame? {
        let deadline = Date().addingTimeInterval(timeout)
        while deadline.timeIntervalSinceNow > 0 {
            guard let frame = try next(timeout: deadline.timeIntervalSinceNow) else { return nil }
            if case .data(let data) = frame, data.clusterID == cluster, data.destination == node {
                return try ZCLFrame(decoding: data.zcl)
            }
        }
        return nil
    }

    func expect<C: ZCLClusterCommand>(_: C.Type) throws -> C {
        let frame = try #require(try nextZCL(), "no \(C.self) from the device")
        #expect(frame.header.commandID == C.commandID, "expected \(C.self), got command \(frame.header.commandID)")
        return try frame.decodePayload(as: C.self)
    }

    func readAttributes(_ cluster: UInt16, _ ids: [UInt16]) throws -> [UInt16: ZCLValue] {
        sequence &+= 1
        send(ZCLFrame(ReadAttributes(attributeIDs: ids), direction: .clientToServer, sequenceNumber: sequence), cluster: cluster)
        let frame = try #require(try nextZCL(cluster: cluster))
        let response = try frame.decodePayload(as: ReadAttributesResponse.self)
        var values: [UInt16: ZCLValue] = [:]
        for record in response.records { if let value = record.value { values[record.attributeID] = value } }
        return values
    }

    private var closed = false
    func close() {
        if !closed { Glibc.close(fd) }
        closed = true
    }
    deinit { close() }
}

/// OTA firmware against the real daemon: the hub's push, a rig as OTA server, activation.
@Suite(.serialized) struct FirmwareTests {
    static let ppmidS2 = "00-DB-12-34-56-78-00-05"   // acme-ppmid-dm, joined to a SMETS2+ hub
    static let ppmidS1 = "00-DB-12-34-56-79-00-05"   // acme-ppmid-dm, joined to a SMETS1 hub
    static let ihd = "00-DB-12-34-56-78-00-06"       // brightview-ihd, downgrades allowed
    static let hub = "00-DB-12-34-56-78-00-01"

    /// Builds a GB image with `smetsctl firmware build`, returning its bytes.
    static func build(model: String = "acme-ppmid-dm", version: String = "01030000", key: String? = "acme-meters-TEST-private.pem",
                      size: Int = 3000, extra: [String] = []) throws -> [UInt8] {
        let dir = DaemonHarness.scratch("fw")
        var body = [UInt8]()
        var state: UInt32 = 0x1234_5678 ^ UInt32(size)
        for _ in 0..<size { state = state &* 1_664_525 &+ 1_013_904_223; body.append(UInt8(truncatingIfNeeded: state >> 24)) }
        try Data(body).write(to: URL(fileURLWithPath: dir + "/body.bin"))
        var arguments = ["firmware", "build", "--lab", DaemonHarness.packageRoot + "/devices", "--model", model, "--version", version,
                         "--body", dir + "/body.bin", "--out", dir + "/image.ota"]
        arguments += key.map { ["--key", DaemonHarness.packageRoot + "/devices/keys/" + $0] } ?? ["--unsigned"]
        let result = try runCommand(DaemonHarness.binary("smetsctl"), arguments + extra)
        #expect(result.status == 0, "smetsctl firmware build: \(result.stderr)")
        return Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/image.ota")))
    }

    static func base64(_ bytes: [UInt8]) -> JSONValue { .string(Data(bytes).base64EncodedString()) }

    func device(_ daemon: DaemonHarness, _ id: String) throws -> JSONValue { try daemon.call("devices.get", ["id": .string(id)]) }

    /// A rig serves `file` to the device over the HAN link, as its OTA server, and returns the
    /// device's Upgrade End Request.
    static func serve(_ file: [UInt8], with rig: HANRig) throws -> UpgradeEndRequest {
        let header = try OTAImage(parsing: file).header
        rig.send(ImageNotify(queryJitter: 100, manufacturerCode: header.manufacturerCode, imageType: header.imageType, newFileVersion: header.fileVersion))
        _ = try rig.expect(QueryNextImageRequest.self)
        rig.send(QueryNextImageResponse.success(manufacturerCode: header.manufacturerCode, imageType: header.imageType,
                                                fileVersion: header.fileVersion, imageSize: UInt32(file.count)))
        while true {
            let frame = try #require(try rig.nextZCL())
            if frame.header.commandID == OTACommandID.upgradeEndRequest { return try frame.decodePayload(as: UpgradeEndRequest.self) }
            let request = try frame.decodePayload(as: ImageBlockRequest.self)
            let start = Int(request.fileOffset)
            let data = Array(file[start..<min(file.count, start + Int(request.maximumDataSize))])
            rig.send(ImageBlockResponse.success(manufacturerCode: header.manufacturerCode, imageType: header.imageType, fileVersion: header.fileVersion,
                                                fileOffset: request.fileOffset, data: data))
        }
    }

    @Test func theHubPushesAnImageAndTheNewVersionIsTheDevicesIdentityEverywhere() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let image = try Self.build()
        let result = try daemon.call("firmware.update", ["image": Self.base64(image), "targets": [.string(Self.ppmidS2)]])
        let entry = try #require(result["results"]?.arrayValue?.first)
        #expect(entry["outcome"]?.stringValue == "activated", "\(entry)")
        #expect(result["fileVersion"]?.stringValue == "01030000")
        let device = try device(daemon, Self.ppmidS2)
        #expect(device["firmwareVersion"]?.stringValue == "01030000")
        #expect(device["presentedFirmwareVersion"]?.stringValue == "01030000")
        #expect(device["status"]?.stringValue == "Commissioned")

        // The HAN sees it too: WELCOME, Basic SWBuildID and OTA CurrentFileVersion.
        let rig = try HANRig(path: daemon.hanPath, device: try #require(EUI64(Self.ppmidS2)))
        #expect(rig.welcome?.currentFileVersion == 0x0103_0000)
        #expect(try rig.readAttributes(ZCLClusterID.basic, [BasicAttribute.swBuildID])[BasicAttribute.swBuildID] == .charString("01030000"))
        let ota = try rig.readAttributes(ZCLClusterID.otaUpgrade, [OTAAttribute.currentFileVersion, OTAAttribute.imageUpgradeStatus])
        #expect(ota[OTAAttribute.currentFileVersion] == .uint32(0x0103_0000))
        #expect(ota[OTAAttribute.imageUpgradeStatus] == .enum8(0))

        // The handshake went over the HAN, frame by frame.
        let trace = try daemon.call("han.trace", ["device": .string(Self.ppmidS2), "limit": 200])["frames"]?.arrayValue ?? []
        let commands = trace.compactMap { $0["command"]?.stringValue }
        for name in ["ImageNotify", "QueryNextImageRequest", "QueryNextImageResponse", "ImageBlockRequest", "ImageBlockResponse",
                     "UpgradeEndRequest", "UpgradeEndResponse"] {
            #expect(commands.contains(name), "\(name) missing from the trace")
        }
        // The same image again is not newer: rejected by the device, with the rule named.
        let again = try daemon.call("firmware.update", ["image": Self.base64(image), "targets": [.string(Self.ppmidS2)]])
        let second = try #require(again["results"]?.arrayValue?.first)
        #expect(second["outcome"]?.stringValue == "rejected")
        #expect(second["checks"]?.arrayValue?.contains { $0["name"]?.stringValue == "downgrade" && $0["passed"]?.boolValue == false } == true)
    }

    @Test func requirement7RefusesADualModePPMIDInASMETS1System() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let image = try Self.build()
        let result = try daemon.call("firmware.update", ["image": Self.base64(image), "targets": [.string(Self.ppmidS1)]])
        let entry = try #require(result["results"]?.arrayValue?.first)
        #expect(entry["outcome"]?.stringValue == "refused")
        #expect(entry["reason"]?.stringValue?.contains("MP202 requirement 7") == true)
        #expect(try device(daemon, Self.ppmidS1)["firmwareVersion"]?.stringValue == "01020300")
        // Requirement 7 is the DCC's rule: firmware.check shows it failing in the DCC's layer, while
        // the device's own checks (all a rig serving it over the HAN link meets) pass.
        let check = try daemon.call("firmware.check", ["image": Self.base64(image), "device": .string(Self.ppmidS1)])
        #expect(check["accepted"]?.boolValue == false)
        #expect(check["dcc"]?.arrayValue?.contains { $0["name"]?.stringValue == "mp202Requirement7" && $0["passed"]?.boolValue == false } == true)
        #expect(check["device"]?.arrayValue?.allSatisfy { $0["passed"]?.boolValue == true } == true)
    }

    @Test func anImageSignedByAnotherKeyIsRejectedWithInvalidImage() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let image = try Self.build(key: "brightview-TEST-private.pem")
        let result = try daemon.call("firmware.update", ["image": Self.base64(image), "targets": [.string(Self.ppmidS2)]])
        let entry = try #require(result["results"]?.arrayValue?.first)
        #expect(entry["outcome"]?.stringValue == "rejected")
        let failed = entry["checks"]?.arrayValue?.filter { $0["passed"]?.boolValue == false }.compactMap { $0["name"]?.stringValue }
        #expect(failed == ["signature"])
        #expect(try device(daemon, Self.ppmidS2)["firmwareVersion"]?.stringValue == "01020300")
        let trace = try daemon.call("han.trace", ["device": .string(Self.ppmidS2), "limit": 5])["frames"]?.arrayValue ?? []
        let end = try #require(trace.last { $0["command"]?.stringValue == "UpgradeEndRequest" })
        // Upgrade End Request status byte 0x96 INVALID_IMAGE, right after the ZCL header.
        #expect(end["zcl"]?.stringValue?.dropFirst(6).hasPrefix("96") == true, "\(end)")
    }

    @Test func laterThenActivateFirmwareWithTheHashAndItsOutcomes() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        #expect(try daemon.call("firmware.activate", ["device": .string(Self.ppmidS2)])["outcome"]?.intValue == 1)
        let image = try Self.build()
        let result = try daemon.call("firmware.update", ["image": Self.base64(image), "targets": [.string(Self.ppmidS2)], "activate": "later"])
        #expect(result["results"]?.arrayValue?.first?["outcome"]?.stringValue == "waiting")
        let hash = try #require(result["hash"]?.stringValue)
        let version = try daemon.call("firmware.version", ["device": .string(Self.ppmidS2)])
        #expect(version["firmwareVersion"]?.stringValue == "01020300")
        #expect(version["held"]?["hash"]?.stringValue == hash)
        #expect(version["imageUpgradeStatus"]?.intValue == 3)
        let wrong = String(repeating: "0", count: 64)
        #expect(try daemon.call("firmware.activate", ["device": .string(Self.ppmidS2), "hash": .string(wrong)])["outcome"]?.intValue == 2)
        let done = try daemon.call("firmware.activate", ["device": .string(Self.ppmidS2), "hash": .string(hash)])
        #expect(done["outcome"]?.intValue == 0, "\(done)")
        #expect(done["firmwareVersion"]?.stringValue == "01030000")
        #expect(try daemon.call("firmware.activate", ["device": .string(Self.ppmidS2), "hash": .string(hash)])["outcome"]?.intValue == 1)
    }

    @Test func aScheduledActivationIsDurableAndFiresOnce() throws {
        let daemon = try DaemonHarness().start()
        _ = try daemon.call("clock.set", ["time": "2031-06-01T12:00:00Z"])
        let image = try Self.build()
        let result = try daemon.call("firmware.update", ["image": Self.base64(image), "targets": [.string(Self.ppmidS2)],
                                                         "executionTime": "2031-06-01T13:00:00Z"])
        let entry = try #require(result["results"]?.arrayValue?.first)
        #expect(entry["outcome"]?.stringValue == "scheduled")
        #expect(entry["activateAt"]?.stringValue == "2031-06-01T13:00:00Z")
        #expect(daemon.stop() == 0)

        let again = try DaemonHarness(lab: daemon.labDirectory, state: daemon.stateDirectory, runtime: daemon.runtimeDirectory).start()
        defer { again.stop() }
        let held = try again.call("firmware.version", ["device": .string(Self.ppmidS2)])
        #expect(held["held"]?["activateAt"]?.stringValue == "2031-06-01T13:00:00Z")
        #expect(held["imageUpgradeStatus"]?.intValue == 3, "restored from the store")
        #expect(held["firmwareVersion"]?.stringValue == "01020300")
        _ = try again.call("clock.advance", ["hours": 2])
        #expect(try device(again, Self.ppmidS2)["firmwareVersion"]?.stringValue == "01030000")
        let after = try again.call("firmware.version", ["device": .string(Self.ppmidS2)])
        #expect(after["held"]?.isNull == true)
        #expect(try again.call("firmware.activate", ["device": .string(Self.ppmidS2)])["outcome"]?.intValue == 1, "fired once, nothing left held")
    }

    @Test func oneStoredImageServesManyDevices() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let created = try daemon.call("devices.create", ["type": "PPMID", "premises": "P0001", "model": "acme-ppmid-dm", "preNotified": "SMETS2+"])
        let second = try #require(created["id"]?.stringValue)
        _ = try daemon.call("han.join", ["device": .string(second), "hub": .string(Self.hub)])
        let image = try Self.build()
        let result = try daemon.call("firmware.update", ["image": Self.base64(image), "targets": [.string(Self.ppmidS2), .string(second)]])
        #expect(result["results"]?.arrayValue?.map { $0["outcome"]?.stringValue } == ["activated", "activated"])
        let images = try daemon.call("firmware.images")["images"]?.arrayValue ?? []
        #expect(images.count == 1)
        #expect(images.first?["hash"]?.stringValue == result["hash"]?.stringValue)
    }

    @Test func aRigAsOTAServerWithABrokenTransferThatResumesFromFileOffset() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let file = try Self.build(size: 1000)
        let parsed = try OTAImage(parsing: file)
        let header = parsed.header
        let id = try #require(EUI64(Self.ppmidS2))
        let blockLimit = 200  // acme-ppmid-dm maxImageBlockBytes

        var rig = try HANRig(path: daemon.hanPath, device: id)
        rig.send(ImageNotify(queryJitter: 100, manufacturerCode: header.manufacturerCode, imageType: header.imageType, newFileVersion: header.fileVersion))
        let query = try rig.expect(QueryNextImageRequest.self)
        #expect(query.manufacturerCode == 0x1234 && query.imageType == 0x0001 && query.currentFileVersion == 0x0102_0300)
        rig.send(QueryNextImageResponse.success(manufacturerCode: header.manufacturerCode, imageType: header.imageType,
                                                fileVersion: header.fileVersion, imageSize: UInt32(file.count)))
        // Serve three blocks, then drop the link.
        var served = 0
        for _ in 0..<3 {
            let request = try rig.expect(ImageBlockRequest.self)
            #expect(Int(request.fileOffset) == served)
            #expect(Int(request.maximumDataSize) == blockLimit)
            let data = Array(file[served..<min(file.count, served + Int(request.maximumDataSize))])
            rig.send(ImageBlockResponse.success(manufacturerCode: header.manufacturerCode, imageType: header.imageType, fileVersion: header.fileVersion,
                                                fileOffset: request.fileOffset, data: data))
            served += data.count
        }
        _ = try rig.expect(ImageBlockRequest.self)  // the fourth request, never answered
        rig.close()

        rig = try HANRig(path: daemon.hanPath, device: id)
        let attributes = try rig.readAttributes(ZCLClusterID.otaUpgrade, [OTAAttribute.fileOffset, OTAAttribute.imageUpgradeStatus])
        #expect(attributes[OTAAttribute.fileOffset] == .uint32(UInt32(served)))
        #expect(attributes[OTAAttribute.imageUpgradeStatus] == .enum8(1))

        // Notified again, the device resumes where it stopped.
        rig.send(ImageNotify(queryJitter: 100, manufacturerCode: header.manufacturerCode, imageType: header.imageType, newFileVersion: header.fileVersion))
        _ = try rig.expect(QueryNextImageRequest.self)
        rig.send(QueryNextImageResponse.success(manufacturerCode: header.manufacturerCode, imageType: header.imageType,
                                                fileVersion: header.fileVersion, imageSize: UInt32(file.count)))
        while true {
            let frame = try #require(try rig.nextZCL())
            if frame.header.commandID == OTACommandID.upgradeEndRequest {
                let end = try frame.decodePayload(as: UpgradeEndRequest.self)
                #expect(end.status == .success)
                #expect(end.fileVersion == header.fileVersion)
                break
            }
            let request = try frame.decodePayload(as: ImageBlockRequest.self)
            #expect(Int(request.fileOffset) == served, "resumed at FileOffset, not from 0")
            let data = Array(file[served..<min(file.count, served + Int(request.maximumDataSize))])
            rig.send(ImageBlockResponse.success(manufacturerCode: header.manufacturerCode, imageType: header.imageType, fileVersion: header.fileVersion,
                                                fileOffset: request.fileOffset, data: data))
            served += data.count
        }
        #expect(served == file.count)
        let complete = try rig.readAttributes(ZCLClusterID.otaUpgrade, [OTAAttribute.imageUpgradeStatus, OTAAttribute.downloadedFileVersion])
        #expect(complete[OTAAttribute.imageUpgradeStatus] == .enum8(2))
        #expect(complete[OTAAttribute.downloadedFileVersion] == .uint32(0x0103_0000))
        // Activate now.
        rig.send(UpgradeEndResponse(manufacturerCode: header.manufacturerCode, imageType: header.imageType, fileVersion: header.fileVersion,
                                    currentTime: 0, upgradeTime: 0))
        var activated = false
        for _ in 0..<50 where !activated {
            activated = try device(daemon, Self.ppmidS2)["firmwareVersion"]?.stringValue == "01030000"
            if !activated { usleep(50_000) }
        }
        #expect(activated)
        let fresh = try HANRig(path: daemon.hanPath, device: id)
        #expect(fresh.welcome?.currentFileVersion == 0x0103_0000)
    }

    @Test func smetsctlChecksAndPushes() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let dir = DaemonHarness.scratch("cli")
        let good = try Self.build()
        try Data(good).write(to: URL(fileURLWithPath: dir + "/good.ota"))
        let smetsctl = DaemonHarness.binary("smetsctl")
        let lab = ["--lab", DaemonHarness.packageRoot + "/devices"]
        let check = try runCommand(smetsctl, ["firmware", "check", dir + "/good.ota"] + lab)
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("PASS  signature"))
        let refused = try runCommand(smetsctl, ["firmware", "check", dir + "/good.ota", "--mode", "SMETS1"] + lab)
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("FAIL  mp202Requirement7  MP202 requirement 7"))
        var broken = good
        broken[0] = 0
        try Data(broken).write(to: URL(fileURLWithPath: dir + "/broken.ota"))
        let unreadable = try runCommand(smetsctl, ["firmware", "check", dir + "/broken.ota", "--json"] + lab)
        #expect(unreadable.status == 1)
        #expect(unreadable.stdout.contains("bad_magic"))

        let push = try runCommand(smetsctl, ["firmware", "push", dir + "/good.ota", "--device", Self.ppmidS2, "--socket", daemon.controlPath])
        #expect(push.status == 0, "\(push.stdout)\(push.stderr)")
        #expect(push.stdout.contains("\(Self.ppmidS2): activated"))
        #expect(push.stderr.contains("100%"), "progress from events: \(push.stderr)")
        let version = try runCommand(smetsctl, ["firmware", "version", Self.ppmidS2, "--socket", daemon.controlPath])
        #expect(version.stdout.contains("runs 01030000"))
    }
}
