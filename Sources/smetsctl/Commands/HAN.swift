import ArgumentParser

struct HAN: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "han",
        abstract: "The Home Area Network: join and leave hubs, top up, trace and send ZCL frames, list links, capture.",
        discussion: """
            Examples:
              smetsctl han join 00-DB-12-34-56-78-90-A1 --hub 00-DB-12-34-56-78-00-01
              smetsctl han leave 00-DB-12-34-56-78-90-A1
              smetsctl han topup 00-DB-12-34-56-78-00-05 12345678901234500150
              smetsctl han trace 00-DB-12-34-56-78-00-05 --follow
              smetsctl han links --device 00-DB-12-34-56-78-00-05
              smetsctl han send --cluster 0703 \\
                  --from 00-DB-12-34-56-78-00-02 --to 00-DB-12-34-56-78-00-05 \\
                  --zcl 19010000010000002000000000FFFF0548656C6C6F
            """,
        subcommands: [HANJoin.self, HANLeave.self, HANTopUp.self, HANTrace.self, HANSend.self, HANCapture.self, HANLinks.self])
}
