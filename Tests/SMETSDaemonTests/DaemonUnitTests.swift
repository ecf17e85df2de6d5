import Foundation
import Logging
import SMETSCore
import SMETSRPC
@testable import SMETSDaemon
import SMETSStore
import Testing

/// Pieces of the daemon that need no socket: the method table against the docs, traces, UTRNs.
struct DaemonUnitTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static func router() throws -> (ControlRouter, String) {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("smetsd-unit-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let lab = try LabLoader.load(directory: root + "/devices")
        let logger = Logger(label: "test")
        let engine = try Engine(store: try StateStore(directory: state), lab: lab, events: EventHub(logger: logger), logger: logger)
        let info = DaemonInfo(pid: 1, statePath: state, runtimeDirectory: state, counter: ConnectionCounter())
        return (ControlRouter(engine: engine, daemon: info, access: AccessPolicy(), logger: logger), state)
    }

    @Test func everyControlMethodIsDocumentedAndInTheAccessMatrix() throws {
        let (router, state) = try Self.router()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let reference = try ["control-api.md", "firmware.md"].map { try String(contentsOfFile: Self.root + "/docs/" + $0, encoding: .utf8) }.joined()
        let matrix = try String(contentsOfFile: Self.root + "/docs/access.md", encoding: .utf8)
        #expect(router.methodNames.count >= 25)
        for method in router.methodNames {
            #expect(reference.contains("### \(method)"), "docs have no section for \(method)")
            #expect(matrix.contains(method), "the access matrix does not list \(method)")
        }
    }

    @Test func rolesSeeWhatTheMatrixSays() {
        let policy = AccessPolicy()
        #expect(policy.refusal(method: "clock.set", role: .admin) == nil)
        #expect(policy.refusal(method: "clock.set", role: .rig) != nil)
        #expect(policy.refusal(method: "han.send", role: .rig) == nil)
        #expect(policy.refusal(method: "assets.list", role: .map("MAP-ALPHA")) == nil)
        #expect(policy.refusal(method: "devices.list", role: .manufacturer("1234")) != nil)
        #expect(policy.refusal(method: "daemon.status", role: .anonymous) == nil)
        #expect(policy.refusal(method: "assets.list", role: .anonymous) != nil)
        #expect(Role(text: "manufacturer:12") == nil, "a manufacturer ID is 4 hex digits")
        #expect(Role(text: "map:MAP-ALPHA") == .map("MAP-ALPHA"))
        #expect(policy.role(for: PeerCredentials(pid: 1, uid: 0, gid: 0)) == .admin)
        #expect(policy.role(for: nil) == .anonymous)
    }

    @Test func tracesKeepTheLastFramesOfTheNewestDevices() {
        let traces = FrameTraces(maxDevices: 3)
        func frame(_ n: Int) -> TracedFrame { TracedFrame(time: Timestamp(unixMillis: Int64(n)), direction: .incoming, peer: EUI64(1), cluster: 0, zcl: [UInt8(n % 256)]) }
        for n in 0..<(FrameTraces.perDevice + 5) { traces.record(EUI64(100), frame(n)) }
        let kept = traces.frames(EUI64(100))
        #expect(kept.count == FrameTraces.perDevice)
        #expect(kept.first?.time.unixMillis == 5, "the oldest frames go first")
        #expect(kept.last?.time.unixMillis == Int64(FrameTraces.perDevice + 4))
        for device in 101...103 { traces.record(EUI64(UInt64(device)), frame(device)) }
        #expect(traces.frames(EUI64(100)).isEmpty, "the oldest device's ring goes when a fourth device is traced")
        #expect(traces.frames(EUI64(103)).count == 1)
        // A request and its answers recorded at once keep their order, across devices.
        traces.record([(EUI64(103), frame(1)), (EUI64(104), frame(2)), (EUI64(103), frame(3))])
        #expect(traces.frames(EUI64(103)).map(\.time.unixMillis) == [103, 1, 3])
        #expect(traces.frames(EUI64(104)).count == 1)
        #expect(traces.frames(EUI64(101)).isEmpty, "a batch that starts a ring drops the oldest as one record would")
    }

    @Test func eventDataIsTypedAndShapedAsJSONOnlyAtTheEdge() {
        let data: [String: EventValue] = ["text": "a \"quoted\" line\n", "count": 3, "flag": true, "list": .array(["x", 1]),
                                          "nested": .object(["k": .null])]
        let event = DaemonEvent(seq: 7, time: Timestamp(unixMillis: 0), type: EventType.tenancyCleared.rawValue, device: nil, data: data)
        #expect(event.json["data"]?["list"] == .array([.string("x"), .int(1)]))
        #expect(event.json["data"]?["nested"]?["k"] == .null && event.json["device"] == .null && event.json["seq"] == .int(7))
        // The log writes a string as it is, anything else as compact JSON.
        #expect(EventValue.string("plain text").logText == "plain text")
        #expect(EventValue.array(["a\"b", 2, false]).logText == #"["a\"b",2,false]"#)
        #expect(EventValue.object(["b": .null, "a": .array([])]).logText == #"{"a":[],"b":null}"#)
        #expect(EventValue.array(["\u{1}"]).logText == #"["\u0001"]"#)
    }

    @Test func hanFrameSubscribersAreCountedAsTheyComeAndGo() {
        let hub = EventHub(logger: Logger(label: "test"))
        #expect(!hub.hasSubscribers(for: .hanFrame))
        let other = hub.subscribe(types: [EventType.tenancyCleared.rawValue]) { _ in }
        #expect(!hub.hasSubscribers(for: .hanFrame) && hub.hasSubscribers(for: .tenancyCleared))
        let all = hub.subscribe(types: nil) { _ in }
        let frames = hub.subscribe(types: [EventType.hanFrame.rawValue]) { _ in }
        #expect(hub.hasSubscribers(for: .hanFrame))
        hub.unsubscribe(all)
        #expect(hub.hasSubscribers(for: .hanFrame))
        hub.unsubscribe(frames)
        #expect(!hub.hasSubscribers(for: .hanFrame))
        hub.unsubscribe(other)
        #expect(!hub.hasSubscribers(for: .tenancyCleared))
    }
}
