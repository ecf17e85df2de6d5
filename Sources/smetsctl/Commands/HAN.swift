import ArgumentParser

struct HAN: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "han",
        abstract: "Join devices to a hub's Home Area Network, and take them off it.",
        discussion: """
            Examples:
              smetsctl han join 00-DB-12-34-56-78-90-A1 --hub 00-DB-12-34-56-78-00-01
              smetsctl han leave 00-DB-12-34-56-78-90-A1
            """,
        subcommands: [HANJoin.self, HANLeave.self])
}
