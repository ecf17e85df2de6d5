import Foundation
import SMETSClient
import SMETSCore
import SMETSRPC
import SMETSWire
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// SIGHUP and `smetsd.json`: live limits apply to new connections, restart-only keys are named.
@Suite(.serialized) struct ReloadTests {
    static let meter = "00-DB-12-34-56-78-00-02"

    /// A HAN connection whose HELLO is sent when the test says, to tell which limits it was accepted under.
    final class PendingLink {
        let fd: Int32
        private var decoder = HANFrameDecoder()

        init(path: String) throws {
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
        }

        deinit { close(fd) }

        /// Sends HELLO for `device` and returns the answer (WELCOME or ERROR), nil after 10 s.
        func hello(_ device: String) throws -> HANFrame? {
            let bytes = HANFrame.hello(HANHello(rigNode: EUI64(0x00DB_FFFF_0000_0002), target: try #require(EUI64(device)))).encoded()
            guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { return nil }
            let deadline = Date().addingTimeInterval(10)
            while deadline.timeIntervalSinceNow > 0 {
                if let frame = try decoder.next() { return frame }
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 1000) >= 0 else { return nil }
                guard poller.revents != 0 else { continue }
                var buffer = [UInt8](repeating: 0, count: 4096)
                let count = read(fd, &buffer, buffer.count)
                if count <= 0 { return nil }
                decoder.append(buffer[0..<count])
            }
            return nil
        }
    }

    static func writeSettings(_ json: String, lab: String) throws {
        try json.write(toFile: lab + "/smetsd.json", atomically: true, encoding: .utf8)
    }

    /// Sends SIGHUP and waits for the daemon's reload line (success or failure; not the engine's
    /// `daemon.reloaded` event, logged too); returns that line.
    static func reload(_ daemon: DaemonHarness) throws -> String {
        let marker = { (text: String) in
            text.components(separatedBy: "\n").filter { $0.contains("event=daemon.reload") && $0.contains("devices folder") }
        }
        let before = marker(daemon.logText).count
        kill(daemon.process.processIdentifier, SIGHUP)
        for _ in 0..<200 {
            let lines = marker(daemon.logText)
            if lines.count > before { return lines[before] }
            usleep(50_000)
        }
        Issue.record("no reload line in the log:\n\(daemon.logText)")
        return ""
    }

    static func isWelcome(_ frame: HANFrame?) -> Bool { if case .welcome? = frame { true } else { false } }

    static func isTooMany(_ frame: HANFrame?) -> Bool {
        if case .error(let error)? = frame { error.code == .tooManyConnections } else { false }
    }

    @Test func aLoweredLinkLimitAppliesToNewConnectionsAndARestartOnlyKeyIsNamed() throws {
        let lab = try DaemonHarness.copyOfLab()
        let daemon = try DaemonHarness(lab: lab).start()
        defer { daemon.stop() }
        let first = try PendingLink(path: daemon.hanPath), second = try PendingLink(path: daemon.hanPath)
        #expect(Self.isWelcome(try first.hello(Self.meter)))
        #expect(Self.isWelcome(try second.hello(Self.meter)))
        let acceptedBefore = try PendingLink(path: daemon.hanPath)
        let oldControl = try daemon.client()
        defer { oldControl.close() }
        _ = try oldControl.call("daemon.status")

        try Self.writeSettings(#"{"maxLinksPerDevice": 2, "maxControlLineBytes": 2048, "socketMode": "0666"}"#, lab: lab)
        let line = try Self.reload(daemon)
        #expect(line.contains("restart smetsd to apply socketMode"), "\(line)")
        #expect(line.contains("settings_need_restart=socketMode"), "\(line)")
        #expect(line.contains("settings_applied=maxLinksPerDevice,maxControlLineBytes"), "\(line)")

        let third = try PendingLink(path: daemon.hanPath)
        #expect(Self.isTooMany(try third.hello(Self.meter)), "a new link meets the new limit of 2")
        #expect(Self.isWelcome(try acceptedBefore.hello(Self.meter)), "a link accepted before the reload keeps its limits")

        let long: JSONValue = ["pad": .string(String(repeating: "x", count: 3000))]
        let newControl = try daemon.client()
        defer { newControl.close() }
        do {
            _ = try newControl.call("daemon.status", params: long)
            Issue.record("a 3000-byte line passed a 2048-byte limit")
        } catch {
            guard case .remote(let refusal) = error else { throw error }
            #expect(refusal.code == JSONRPCError.invalidRequestCode)
            #expect(refusal.message.contains("maxControlLineBytes"))
        }
        #expect(try oldControl.call("daemon.status", params: long)["ready"]?.boolValue == true, "an open control connection keeps its line limit")

        var info = stat()
        #expect(stat(daemon.hanPath, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o660, "the socket keeps the mode it was bound with until a restart")

        // The next reload still says the mode waits for a restart.
        #expect(try Self.reload(daemon).contains("settings_need_restart=socketMode"))
    }

    @Test func aReloadWithAnUnknownKeyKeepsThePreviousSettingsAndNamesTheKey() throws {
        let lab = try DaemonHarness.copyOfLab(settings: #"{"maxLinksPerDevice": 1}"#)
        let daemon = try DaemonHarness(lab: lab).start()
        defer { daemon.stop() }
        let first = try PendingLink(path: daemon.hanPath)
        #expect(Self.isWelcome(try first.hello(Self.meter)))

        let misspelt = #"{"maxLinkPerDevice": 8}"#
        try Self.writeSettings(misspelt, lab: lab)
        let line = try Self.reload(daemon)
        #expect(line.contains("event=daemon.reload_failed"), "\(line)")
        #expect(line.contains("smetsd.json: maxLinkPerDevice: unknown key; did you mean 'maxLinksPerDevice'?"), "\(line)")
        #expect(Self.isTooMany(try PendingLink(path: daemon.hanPath).hello(Self.meter)), "the limit of 1 is still in force")

        try Self.writeSettings(#"{"maxLinksPerDevice": 8}"#, lab: lab)
        let fixed = try Self.reload(daemon)
        #expect(fixed.contains("settings_applied=maxLinksPerDevice"), "\(fixed)")
        #expect(!fixed.contains("settings_need_restart"))
        #expect(Self.isWelcome(try PendingLink(path: daemon.hanPath).hello(Self.meter)))
    }

    @Test func anUnknownKeyStopsTheStartWithExit78() throws {
        let misspelt = #"{"helloTimeout": 5}"#
        let lab = try DaemonHarness.copyOfLab(settings: misspelt)
        let daemon = DaemonHarness(lab: lab)
        try daemon.start(waitReady: false)
        daemon.process.waitUntilExit()
        #expect(daemon.process.terminationStatus == 78, "EX_CONFIG")
        #expect(daemon.logText.contains("smetsd.json: helloTimeout: unknown key; did you mean 'helloTimeoutSeconds'?"))
    }
}
