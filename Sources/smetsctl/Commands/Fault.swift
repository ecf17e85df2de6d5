import ArgumentParser
import SMETSCore
import SMETSRPC

struct Fault: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fault",
        abstract: "Impair the HAN on purpose: seeded, reproducible drops, delays, corruption, mutes, power cycles.",
        discussion: """
            A rule acts on the frames to and from a device (--device), a premises' devices (--premises), \
            every device (--all) or one HAN link (--link, an ID from `smetsctl han links`), from now until it is removed, expires (--until, --for, --limit) \
            or `fault clear`. Rules compose in ID order. The same --seed, rules and traffic give the \
            same decisions. Every fault done is an event fault.applied (smetsctl events) and a log line. \
            See docs/faults.md.

            Examples:
              smetsctl fault add drop --device 00-DB-12-34-56-78-00-05 --probability 0.1 --seed 7
              smetsctl fault add delay --premises P0001 --delay 5 --jitter 5
              smetsctl fault add corrupt --device 00-DB-12-34-56-78-00-05 --cluster 0019 --bits 2
              smetsctl fault add powerCycle --device 00-DB-12-34-56-78-00-05 --after 0019:05:100
              smetsctl fault add mute --device 00-DB-12-34-56-78-00-05 --for 30
              smetsctl fault add drop --link 3 --direction from --probability 0.5
              smetsctl fault list
              smetsctl fault remove 1
              smetsctl fault clear
            """,
        subcommands: [FaultAdd.self, FaultList.self, FaultRemove.self, FaultClear.self])
}

struct FaultAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add a fault rule and print it with its ID.",
        discussion: """
            Kinds and their options:
              delay           --delay MS (fixed) --jitter MS --distribution uniform|normal|exponential
              drop            --probability P (default 1); with --limit N: the next N frames
              duplicate       --probability P
              reorder         --window N (2-64): N frames held, then released shuffled
              corrupt         --probability P --bits N: bits flipped inside the ZCL payload
              truncate        --probability P: the ZCL payload cut short
              mute            the device hears and says nothing; its links stay open
              disconnect      its links close (now, or on the first frame once the window opens)
              refuseLinks     new links get ERROR 6 while the rule is in force
              powerCycle      it reboots (now, or once the window opens): RAM lost, flash kept
              hubUnreachable  frames between the device and its hub never arrive

            With --link, a rule acts on that link's frames only (a disconnect closes that link); \
            refuseLinks, powerCycle and hubUnreachable name a device.

            Example: a 10 % drop of the OTA cluster after the 100th Image Block Response, seeded:
              smetsctl fault add drop --device 00-DB-12-34-56-78-00-05 --probability 0.1 \\
                  --cluster 0019 --after 0019:05:100 --seed 42
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("delay, drop, duplicate, reorder, corrupt, truncate, mute, disconnect, refuseLinks, powerCycle or hubUnreachable.", valueName: "kind"))
    var kind: String

    @Option(help: ArgumentHelp("The device whose frames are impaired.", valueName: "id"), transform: ArgumentValues.deviceID)
    var device: EUI64?
    @Option(help: ArgumentHelp("Every device of this premises.", valueName: "premises"))
    var premises: String?
    @Flag(help: "Every device of the HAN.")
    var all = false
    @Option(help: ArgumentHelp("Only the frames on this HAN link (an ID from `smetsctl han links`); other links to the device are left alone.", valueName: "id"))
    var link: Int?

    @Option(help: ArgumentHelp("Probability 0 to 1 (drop, duplicate, corrupt, truncate; default 1).", valueName: "p"))
    var probability: Double?
    @Option(help: ArgumentHelp("Fixed delay in milliseconds.", valueName: "ms"))
    var delay: Double?
    @Option(help: ArgumentHelp("Jitter in milliseconds.", valueName: "ms"))
    var jitter: Double?
    @Option(help: ArgumentHelp("uniform (+-jitter, default), normal (sd jitter) or exponential (mean jitter).", valueName: "name"))
    var distribution: String?
    @Option(help: ArgumentHelp("Frames a reorder holds (2-64, default 4).", valueName: "n"))
    var window: Int?
    @Option(help: ArgumentHelp("Bits a corrupt flips (1-64, default 1).", valueName: "n"))
    var bits: Int?

    @Option(help: ArgumentHelp("to (the device), from (the device) or both (default).", valueName: "direction"))
    var direction: String?
    @Option(help: ArgumentHelp("Only this cluster, 4 hex digits (0019).", valueName: "id"))
    var cluster: String?
    @Option(help: ArgumentHelp("Only this ZCL command ID, 2 hex digits (05).", valueName: "id"))
    var command: String?
    @Option(name: .customLong("from"), help: ArgumentHelp("In force from this virtual time (RFC 3339).", valueName: "time"))
    var fromTime: String?
    @Option(help: ArgumentHelp("Expires at this virtual time (RFC 3339).", valueName: "time"))
    var until: String?
    @Option(name: .customLong("for"), help: ArgumentHelp("Expires this many seconds from now.", valueName: "seconds"))
    var forSeconds: Double?
    @Option(help: ArgumentHelp("Let this many matching frames pass first.", valueName: "n"))
    var afterFrames: Int?
    @Option(help: ArgumentHelp("Act from the frame after the COUNTth of this cluster and command, e.g. 0019:05:100.", valueName: "cluster:command:count"))
    var after: String?
    @Option(help: ArgumentHelp("Expire after this many faults.", valueName: "n"))
    var limit: Int?
    @Option(help: ArgumentHelp("The rule's random seed (same seed, same decisions).", valueName: "n"))
    var seed: Int64?

    func validate() throws {
        if [device != nil, premises != nil, all, link != nil].filter({ $0 }).count != 1 {
            throw ValidationError("name exactly one of --device, --premises, --all or --link")
        }
        if let after, after.split(separator: ":").count != 3 {
            throw ValidationError("--after is CLUSTER:COMMAND:COUNT, e.g. 0019:05:100 (the 100th Image Block Response)")
        }
    }

    var params: JSONValue {
        var params: [String: JSONValue] = ["kind": .string(kind)]
        if let device { params["device"] = .string(device.description) }
        if let premises { params["premises"] = .string(premises) }
        if all { params["all"] = true }
        if let link { params["link"] = JSONValue(link) }
        for (key, value) in [("probability", probability), ("delayMs", delay), ("jitterMs", jitter), ("forSeconds", forSeconds)] {
            if let value { params[key] = .double(value) }
        }
        for (key, value) in [("window", window), ("bits", bits), ("afterFrames", afterFrames), ("limit", limit)] {
            if let value { params[key] = JSONValue(value) }
        }
        for (key, value) in [("distribution", distribution), ("direction", direction), ("cluster", cluster), ("command", command),
                             ("from", fromTime), ("until", until)] {
            if let value { params[key] = .string(value) }
        }
        if let seed { params["seed"] = .int(seed) }
        if let after {
            let parts = after.split(separator: ":").map(String.init)
            params["after"] = ["cluster": .string(parts[0]), "command": .string(parts[1]), "count": JSONValue(Int(parts[2]) ?? 0)]
        }
        return .object(params)
    }

    func run() throws {
        let result = try global.session { try $0.call("faults.add", params: params) }
        global.output(result) { result in
            if let applied = result["applied"]?.stringValue {
                let link = result["link"].map { " (link \(Format.text($0)))" } ?? ""
                return "\(applied) of \(Format.text(result["device"]))\(link) done now\n"
            }
            return "added rule \(Format.text(result["id"])): " + FaultList.summary(result) + "\n"
        }
    }
}

struct FaultList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "The fault rules in force, with what each has matched and done.",
        discussion: """
            Columns: ID, KIND, TARGET (device, premises or all), WHICH (direction, cluster, command), \
            WHEN (its window), MATCHED (frames it saw), APPLIED (faults it did), EXPIRED.

            Example:
              smetsctl fault list --json | jq '.rules[] | {id, applied: .counters.applied}'
            """)

    @OptionGroup var global: GlobalOptions

    static func target(_ rule: JSONValue) -> String {
        rule["device"]?.stringValue ?? rule["premises"]?.stringValue ?? rule["link"].map { "link \(Format.text($0))" } ?? "all"
    }

    static func which(_ rule: JSONValue) -> String {
        var parts = [Format.text(rule["direction"])]
        if let cluster = rule["cluster"]?.stringValue { parts.append("cluster " + cluster) }
        if let command = rule["command"]?.stringValue { parts.append("command " + command) }
        return parts.joined(separator: ", ")
    }

    static func when(_ rule: JSONValue) -> String {
        var parts: [String] = []
        if let from = rule["from"]?.stringValue { parts.append("from " + from) }
        if let after = rule["after"] { parts.append("after \(Format.text(after["count"])) x \(Format.text(after["cluster"])):\(Format.text(after["command"]))") }
        if let frames = rule["afterFrames"]?.intValue, frames > 0 { parts.append("after \(frames) frames") }
        if let until = rule["until"]?.stringValue { parts.append("until " + until) }
        if let limit = rule["limit"]?.intValue { parts.append("\(limit) times") }
        return parts.isEmpty ? "always" : parts.joined(separator: ", ")
    }

    static func parameters(_ rule: JSONValue) -> String {
        ["probability", "delayMs", "jitterMs", "distribution", "window", "bits", "hub", "seed"].compactMap { key in
            rule[key].map { "\(key)=\(Format.text($0))" }
        }.joined(separator: " ")
    }

    static func summary(_ rule: JSONValue) -> String {
        [Format.text(rule["kind"]), parameters(rule)].filter { !$0.isEmpty }.joined(separator: " ") + " on \(target(rule)) (\(which(rule)); \(when(rule)))"
    }

    func run() throws {
        let result = try global.session { try $0.call("faults.list") }
        global.output(result) { result in
            let rules = result["rules"]?.arrayValue ?? []
            guard !rules.isEmpty else { return "no fault rules: the HAN is unimpaired\n" }
            let rows = rules.map { rule in
                [Format.text(rule["id"]), Format.text(rule["kind"]) + " " + Self.parameters(rule), Self.target(rule), Self.which(rule),
                 Self.when(rule), Format.text(rule["counters"]?["matched"]), Format.text(rule["counters"]?["applied"]),
                 rule["counters"]?["expired"]?.boolValue == true ? "yes" : "no"]
            }
            return TextTable(headers: ["ID", "KIND", "TARGET", "WHICH", "WHEN", "MATCHED", "APPLIED", "EXPIRED"], rows: rows)
                .render(emphasiseHeader: Terminal.stylesStandardOutput)
        }
    }
}

struct FaultRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove one fault rule (frames a reorder held go out at once).",
        discussion: """
            Example:
              smetsctl fault remove 1
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The rule's ID (smetsctl fault list).", valueName: "id"))
    var id: Int

    func run() throws {
        let result = try global.session { try $0.call("faults.remove", params: ["id": JSONValue(id)]) }
        global.output(result) { "removed rule \(Format.text($0["removed"]))\n" }
    }
}

struct FaultClear: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clear",
        abstract: "Remove every fault rule: the HAN is unimpaired again.",
        discussion: """
            Example:
              smetsctl fault clear
            """)

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let result = try global.session { try $0.call("faults.clear") }
        global.output(result) { "removed \(Format.text($0["removed"])) rules\n" }
    }
}
