import ArgumentParser
import SMETSClient
import SMETSCore
import SMETSRPC

struct HANTrace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Show the ZCL frames a device sent and received; --follow prints new ones as they come.",
        discussion: """
            smetsd keeps each device's last 200 frames in memory. Columns: TIME on the virtual clock, \
            DIR (in: received, out: sent), PEER (the other device), CLUSTER (ID and name), COMMAND, \
            SEQ (the ZCL sequence number) and STATUS (of a Default Response).

            --follow prints the last frames, then every new frame of the device as it happens \
            (events.subscribe to han.frame), until interrupted. With --json, han trace prints the \
            han.trace result; with --follow --json, one frame object a line (JSON Lines), the last \
            frames first.

            Examples:
              smetsctl han trace 00-DB-12-34-56-78-00-05
              smetsctl han trace 00-DB-12-34-56-78-00-02 --limit 5
              smetsctl han trace 00-DB-12-34-56-78-00-05 --follow
              smetsctl han trace 00-DB-12-34-56-78-00-05 --follow --json | jq -r .command
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The device.", valueName: "device-id"), transform: ArgumentValues.deviceID)
    var device: EUI64

    @Option(help: ArgumentHelp("How many of the last frames, 1 to 200 (default 50).", valueName: "n"))
    var limit: Int?

    @Flag(help: "Keep printing the device's frames as they happen, until interrupted.")
    var follow = false

    func validate() throws {
        if let limit, !(1...200).contains(limit) { throw ValidationError("--limit must be between 1 and 200, not \(limit)") }
    }

    static let headers = ["TIME", "DIR", "PEER", "CLUSTER", "COMMAND", "SEQ", "STATUS"]
    /// Column widths when following, wide enough for every cell smetsd names (a longer one shifts its line).
    static let followWidths = [24, 3, 23, 22, 24, 3, 0]

    static func row(_ frame: JSONValue) -> [String] {
        var cluster = Format.text(frame["cluster"])
        if let name = frame["clusterName"]?.stringValue, name != "unknown", !name.isEmpty { cluster += " " + name }
        return [
            Format.text(frame["time"]), Format.text(frame["direction"]), Format.text(frame["peer"]), cluster,
            Format.text(frame["command"]), Format.text(frame["sequence"]), Format.text(frame["status"]),
        ]
    }

    static func table(_ frames: [JSONValue]) -> String {
        TextTable(headers: headers, rows: frames.map(row)).render(emphasiseHeader: Terminal.stylesStandardOutput)
    }

    /// One line with fixed column widths, so that lines printed one at a time line up.
    static func fixedLine(_ cells: [String]) -> String {
        var line = ""
        for (index, cell) in cells.enumerated() {
            if index > 0 { line += "  " }
            line += cell
            if index < cells.count - 1 { line += String(repeating: " ", count: max(0, followWidths[index] - cell.count)) }
        }
        while line.hasSuffix(" ") { line.removeLast() }
        return line + "\n"
    }

    /// What identifies a frame apart from its time (the ZCL bytes hold the sequence number).
    static func key(_ frame: JSONValue) -> [String] {
        ["direction", "peer", "cluster", "zcl"].map { Format.text(frame[$0]) }
    }

    func run() throws {
        var params: [String: JSONValue] = ["device": .string(device.description)]
        if let limit { params["limit"] = JSONValue(limit) }
        guard follow else {
            let result = try global.session { try $0.call("han.trace", params: .object(params)) }
            global.output(result) { result in
                let frames = result["frames"]?.arrayValue ?? []
                return frames.isEmpty ? "no frames to or from \(device) yet\n" : Self.table(frames)
            }
            return
        }
        try global.session { client in
            // Subscribe first, so that no frame falls between the trace and the first event.
            _ = try client.call("events.subscribe", params: ["types": ["han.frame"]])
            let frames = try client.call("han.trace", params: .object(params))["frames"]?.arrayValue ?? []
            if global.json {
                for frame in frames { Terminal.write(frame.serialized() + "\n") }
            } else {
                let header = Self.fixedLine(Self.headers)
                Terminal.write(Terminal.stylesStandardOutput ? "\u{1B}[1m\(header.dropLast())\u{1B}[0m\n" : header)
                for frame in frames { Terminal.write(Self.fixedLine(Self.row(frame))) }
                if Terminal.standardErrorIsTTY { Terminal.writeError("following frames of \(device); Ctrl-C to stop\n") }
            }
            var follower = FrameFollower(device: device.description, traced: frames)
            while true {
                guard let notification = try client.nextNotification(timeout: nil) else { continue }
                guard notification.method == "event", let event = notification.params else { continue }
                for frame in follower.frames(of: event) {
                    Terminal.write(global.json ? frame.serialized() + "\n" : Self.fixedLine(Self.row(frame)))
                }
            }
        }
    }
}

/// Turns han.frame events into the frames of one device, as han.trace would list them.
///
/// - A frame one emulated device sends another is announced as the sender's `out`; smetsd may or may
///   not also announce the receiver's `in`. So the device's `in` frames are taken from either, and a
///   frame announced both ways is shown once.
/// - Frames that came in the trace printed before following are not shown again when their events
///   arrive just after it (the trace was read after subscribing).
struct FrameFollower {
    let device: String
    /// Trace frames not yet matched by an event, and until when to match them.
    private var traced: [[String]: Int] = [:]
    private let tracedUntil = ContinuousClock.now.advanced(by: .milliseconds(500))
    /// `in` frames shown from one announcement and not yet matched by the other (bounded).
    private var fromSender: [[String]] = []
    private var fromReceiver: [[String]] = []

    init(device: String, traced frames: [JSONValue]) {
        self.device = device
        for frame in frames { traced[HANTrace.key(frame), default: 0] += 1 }
    }

    mutating func frames(of event: JSONValue) -> [JSONValue] {
        guard event["type"]?.stringValue == "han.frame", let source = event["device"]?.stringValue,
              var members = event["data"]?.objectValue else { return [] }
        members["time"] = event["time"]
        if source != device {
            // Another device's `out` to this one is this one's `in`.
            guard members["direction"]?.stringValue == "out", members["peer"]?.stringValue == device else { return [] }
            members["direction"] = "in"
            members["peer"] = .string(source)
        }
        let frame = JSONValue.object(members)
        let key = HANTrace.key(frame)
        if let count = traced[key], ContinuousClock.now < tracedUntil {
            traced[key] = count > 1 ? count - 1 : nil
            return []
        }
        guard members["direction"]?.stringValue == "in" else { return [frame] }
        if source != device {
            if Self.take(key, from: &fromReceiver) { return [] }
            Self.remember(key, in: &fromSender)
        } else {
            if Self.take(key, from: &fromSender) { return [] }
            Self.remember(key, in: &fromReceiver)
        }
        return [frame]
    }

    private static func take(_ key: [String], from list: inout [[String]]) -> Bool {
        guard let index = list.firstIndex(of: key) else { return false }
        list.remove(at: index)
        return true
    }

    private static func remember(_ key: [String], in list: inout [[String]]) {
        list.append(key)
        if list.count > 256 { list.removeFirst(list.count - 256) }
    }
}
