import ArgumentParser
import SMETSRPC

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show whether smetsd is ready, and what it holds.",
        discussion: """
            Calls daemon.status: the daemon's state, version and pid, its virtual clock, how many \
            devices and premises it holds, its open connections, and where its lab and state file are.
            Exits 3 when smetsd is not running, so scripts can wait for it:

              until smetsctl status >/dev/null 2>&1; do sleep 0.2; done
            """)

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let result = try global.session { try $0.call("daemon.status") }
        global.output(result, human: Self.describe)
    }

    private static let fields: [(key: String, label: String)] = [
        ("state", "state"), ("version", "version"), ("pid", "pid"), ("startedAt", "started"), ("clock", "clock"),
        ("regime", "regime"), ("devices", "devices"), ("premises", "premises"), ("connections", "connections"),
        ("lab", "lab"), ("stateFile", "state file"),
    ]

    static func describe(_ status: JSONValue) -> String {
        let members = status.objectValue ?? [:]
        var list = KeyValueList()
        for field in fields where members[field.key] != nil { list.add(field.label, Format.text(members[field.key])) }
        let known = Set(fields.map(\.key))
        for key in members.keys.sorted() where !known.contains(key) { list.add(key, Format.text(members[key])) }
        return list.render()
    }
}
