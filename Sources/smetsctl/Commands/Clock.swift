import ArgumentParser
import SMETSRPC

struct Clock: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read, set and advance smetsd's virtual clock.",
        discussion: """
            Times are RFC 3339 UTC. Moving the clock forward runs every scheduled event that falls due, \
            in time order; setting it back runs none.

            Examples:
              smetsctl clock show
              smetsctl clock set 2027-01-01T00:00:00Z
              smetsctl clock advance 1d
            """,
        subcommands: [ClockShow.self, ClockSet.self, ClockAdvance.self],
        defaultSubcommand: ClockShow.self)

    /// `2026-11-23T06:05:21Z (offset +1d, tracking real time)`.
    static func describe(_ clock: JSONValue) -> String {
        var notes: [String] = []
        if let offset = clock["offsetSeconds"]?.doubleValue.flatMap({ Int64(exactly: $0.rounded()) }) {
            notes.append("offset \(offset > 0 ? "+" : "")\(DurationText.describe(seconds: offset)) from real time")
        }
        if let tracks = clock["tracksRealTime"]?.boolValue {
            notes.append(tracks ? "tracking real time" : "stopped")
        }
        return Format.text(clock["now"]) + (notes.isEmpty ? "" : " (\(notes.joined(separator: ", ")))") + "\n"
    }
}

struct ClockShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show the virtual time, its offset from real time, and whether it runs.",
        discussion: """
            Example:
              smetsctl clock show
              -> 2026-11-24T06:05:21Z (offset +1d from real time, tracking real time)
            """)

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let clock = try global.session { try $0.call("clock.get") }
        global.output(clock, human: Clock.describe)
    }
}

struct ClockSet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Set the virtual clock to a time, running the events that fall due on the way.",
        discussion: """
            Examples:
              smetsctl clock set 2027-01-01T00:00:00Z
              smetsctl clock set 2026-12-25T07:30:00+00:00

            Refusals (exit 1): clock_invalid for a time smetsd cannot represent.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The new time, RFC 3339, e.g. 2027-01-01T00:00:00Z.", valueName: "time"),
              transform: ArgumentValues.time)
    var time: String

    func run() throws {
        let clock = try global.session { try $0.call("clock.set", params: ["time": .string(time)]) }
        global.output(clock, human: Clock.describe)
    }
}

struct ClockAdvance: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "advance",
        abstract: "Move the virtual clock forward, running every event that falls due.",
        discussion: """
            A duration is a number with a unit, s, m, h, d or w, several of them together, or plain \
            seconds: 90s, 15m, 2h, 3d, 1h30m, 3600.

            Examples:
              smetsctl clock advance 15m
              smetsctl clock advance 1d12h
              smetsctl clock advance 86400
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("How far: 90s, 15m, 2h, 3d, 1h30m, or plain seconds.", valueName: "duration"),
              transform: ArgumentValues.duration)
    var seconds: Int64

    func run() throws {
        let clock = try global.session { try $0.call("clock.advance", params: ["seconds": .int(seconds)]) }
        global.output(clock) { "advanced \(DurationText.describe(seconds: seconds)) to " + Clock.describe($0) }
    }
}
