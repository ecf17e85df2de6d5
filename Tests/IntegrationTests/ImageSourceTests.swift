import Foundation
import SMETSClient
import SMETSCore
import SMETSRPC
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Requests that name files: the daemon opens a `path` only inside `imagesDirectory`, never follows a
/// link out of it, and never echoes a byte of what it read; images otherwise travel as bytes.
@Suite(.serialized) struct ImageSourceTests {
    static let ppmid = FirmwareTests.ppmidS2

    /// A daemon whose lab has `images/` with a good image, a text file, and links leading out.
    static func daemonWithImages(settings: String = #"{"imagesDirectory":"images"}"#) throws -> (DaemonHarness, String) {
        let lab = try DaemonHarness.copyOfLab(settings: settings)
        let images = lab + "/images"
        try FileManager.default.createDirectory(atPath: images + "/acme", withIntermediateDirectories: true)
        try Data(try FirmwareTests.build()).write(to: URL(fileURLWithPath: images + "/acme/good.ota"))
        try "root:secret-hash:19000:0:99999:7:::\n".write(toFile: lab + "/secret.txt", atomically: true, encoding: .utf8)
        try "root:not-an-image\n".write(toFile: images + "/notes.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: images + "/shadow.ota", withDestinationPath: "/etc/shadow")
        try FileManager.default.createSymbolicLink(atPath: images + "/secret.ota", withDestinationPath: "../secret.txt")
        try FileManager.default.createSymbolicLink(atPath: images + "/etc", withDestinationPath: "/etc")
        try FileManager.default.createSymbolicLink(atPath: images + "/inside.ota", withDestinationPath: "acme/good.ota")
        return (try DaemonHarness(lab: lab).start(), lab)
    }

    static func refusal(_ daemon: DaemonHarness, _ method: String, _ path: String) throws -> JSONRPCError {
        var params: [String: JSONValue] = ["path": .string(path)]
        if method == "firmware.check" { params["device"] = .string(ppmid) } else { params["targets"] = [.string(ppmid)] }
        return try #require(try daemon.callError(method, .object(params)), "\(method) \(path) was accepted")
    }

    /// Nothing of the file's content: not its first word, nor the hex of its first bytes.
    static func expectNoContent(_ error: JSONRPCError) {
        let text = "\(error.message) \(error.data.map { "\($0)" } ?? "")"
        #expect(!text.contains("root"), "\(text)")
        #expect(!text.contains("746F6F72") && !text.contains("0x"), "\(text)")
        #expect(!text.contains("secret-hash") && !text.contains("not-an-image"), "\(text)")
    }

    @Test func withoutAnImagesFolderNoPathIsOpened() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        for method in ["firmware.check", "firmware.update"] {
            let error = try Self.refusal(daemon, method, "/etc/shadow")
            #expect(error.code == ApplicationErrorCode.pathRefused.code, "\(error)")
            #expect(error.reason == "path_refused")
            Self.expectNoContent(error)
        }
    }

    @Test func onlyRegularFilesInsideTheImagesFolderAreRead() throws {
        let (daemon, _) = try Self.daemonWithImages()
        defer { daemon.stop() }
        let accepted = try daemon.call("firmware.check", ["path": "acme/good.ota", "device": .string(Self.ppmid)])
        #expect(accepted["accepted"]?.boolValue == true, "\(accepted)")

        for path in ["/etc/shadow", "../secret.txt", "acme/../../secret.txt", "./acme/good.ota", "shadow.ota", "secret.ota",
                     "etc/shadow", "etc/passwd", "inside.ota", "acme", "missing.ota", "acme//good.ota", ""] {
            for method in ["firmware.check", "firmware.update"] {
                let error = try Self.refusal(daemon, method, path)
                #expect(error.reason == "path_refused", "\(method) \(path): \(error)")
                Self.expectNoContent(error)
            }
        }
        // A file inside the folder that is not an image: the reason only, not the header it has.
        let notAnImage = try Self.refusal(daemon, "firmware.check", "notes.txt")
        #expect(notAnImage.reason == "invalid_state")
        #expect(notAnImage.message.contains("bad_magic"), "\(notAnImage)")
        Self.expectNoContent(notAnImage)
        #expect(try daemon.call("daemon.status")["ready"]?.boolValue == true)
    }

    @Test func aChunkedUploadServesCheckAndUpdateOnItsConnectionOnly() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let image = try FirmwareTests.build()
        let client = try daemon.client()
        defer { client.close() }
        let begun = try client.call("firmware.upload.begin", params: ["size": .int(Int64(image.count))])
        let id = try #require(begun["upload"]?.stringValue)
        #expect((begun["chunkBytes"]?.intValue ?? 0) >= 1024)
        let half = image.count / 2
        func chunk(_ range: Range<Int>, at offset: Int) throws -> JSONValue {
            try client.call("firmware.upload.chunk", params: [
                "upload": .string(id), "offset": .int(Int64(offset)), "data": .string(Data(image[range]).base64EncodedString()),
            ])
        }
        #expect(try chunk(0..<half, at: 0)["received"]?.intValue == Int64(half))
        // A resent chunk is refused, not merged twice.
        #expect(throws: ControlClientError.self) { try chunk(0..<half, at: 0) }
        // Not usable before commit.
        #expect(throws: ControlClientError.self) {
            try client.call("firmware.check", params: ["upload": .string(id), "device": .string(Self.ppmid)])
        }
        #expect(try chunk(half..<image.count, at: half)["received"]?.intValue == Int64(image.count))
        let committed = try client.call("firmware.upload.commit", params: ["upload": .string(id)])
        #expect(committed["size"]?.intValue == Int64(image.count))
        let check = try client.call("firmware.check", params: ["upload": .string(id), "device": .string(Self.ppmid)])
        #expect(check["accepted"]?.boolValue == true, "\(check)")
        // Another connection cannot use it.
        let other = try #require(try daemon.callError("firmware.check", ["upload": .string(id), "device": .string(Self.ppmid)]))
        #expect(other.reason == "invalid_state")
        let update = try client.call("firmware.update", params: ["upload": .string(id), "targets": [.string(Self.ppmid)], "activate": "later"])
        #expect(update["results"]?[0]?["outcome"]?.stringValue == "waiting", "\(update)")
    }

    @Test func uploadsAreBoundedAndFreedWithTheirConnection() throws {
        let daemon = try DaemonHarness(lab: try DaemonHarness.copyOfLab(settings: #"{"maxUploadBytes":10000,"maxImageBytes":8000}"#)).start()
        defer { daemon.stop() }
        let over = try #require(try daemon.callError("firmware.upload.begin", ["size": 9000]))
        #expect(over.reason == "limit_exceeded" && over.message.contains("maxImageBytes"), "\(over)")
        let first = try daemon.client()
        _ = try first.call("firmware.upload.begin", params: ["size": 6000])
        let full = try #require(try daemon.callError("firmware.upload.begin", ["size": 6000]))
        #expect(full.reason == "limit_exceeded" && full.message.contains("maxUploadBytes"), "\(full)")
        first.close()
        // The closed connection's reservation is released (closing is asynchronous: poll briefly).
        var freed = false
        for _ in 0..<100 where !freed {
            freed = (try? daemon.call("firmware.upload.begin", ["size": 6000])) != nil
            if !freed { usleep(20_000) }
        }
        #expect(freed)
    }

    @Test func smetsctlStreamsALargeImageAndNamesStoredOnes() throws {
        let (daemon, lab) = try Self.daemonWithImages()
        defer { daemon.stop() }
        let smetsctl = DaemonHarness.binary("smetsctl")
        let large = try FirmwareTests.build(size: 700_000)
        let dir = DaemonHarness.scratch("upload")
        try Data(large).write(to: URL(fileURLWithPath: dir + "/large.ota"))
        let socket = ["--socket", daemon.controlPath]
        let check = try runCommand(smetsctl, ["firmware", "check", dir + "/large.ota", "--daemon", "--device", Self.ppmid] + socket)
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("PASS  signature"), "\(check.stdout)")
        #expect(check.stderr.contains("\(large.count) bytes sent"), "the upload is streamed: \(check.stderr)")
        let stored = try runCommand(smetsctl, ["firmware", "check", "acme/good.ota", "--daemon", "--stored", "--device", Self.ppmid, "--json"] + socket)
        #expect(stored.status == 0, "\(stored.stdout)\(stored.stderr)")
        let escape = try runCommand(smetsctl, ["firmware", "update", "shadow.ota", "--stored", "--device", Self.ppmid, "--json"] + socket)
        #expect(escape.status == 1)
        #expect(escape.stderr.contains("path_refused") && !escape.stderr.contains("root"), "\(escape.stderr)")
        _ = lab
    }
}
