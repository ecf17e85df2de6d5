import ArgumentParser
import SMETSRPC

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print smetsd's events as they happen, until interrupted.",
        discussion: """
            Each event is one line, TIME TYPE DEVICE key=value..., or with --json the event object as \
            one line of JSON. Output is written line by line, so it can be piped. Stop with Ctrl-C.

            Event types: device.created, device.removed, device.joined, device.left, device.status, \
            clock.changed, daemon.reloaded, lab.generated, han.frame.

            Examples:
              smetsctl events
              smetsctl events --type device.joined --type device.left
              smetsctl events --type device.status --json | jq -c 'select(.data.status == "Commissioned")'
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: [.customLong("type")], parsing: .singleValue,
            help: ArgumentHelp("Only events of this type; repeat it (or separate with commas) for several.", valueName: "type"))
    var types: [String] = []

    var params: JSONValue? {
        let wanted = types.flatMap { $0.split(separator: ",").map { String($0).trimmingWhitespace() } }.filter { !$0.isEmpty }
        return wanted.isEmpty ? nil : ["types": .array(wanted.map { .string($0) })]
    }

    func run() throws {
        try global.session { client in
            _ = try client.call("events.subscribe", params: params)
            if !global.json, Terminal.standardErrorIsTTY {
                Terminal.writeError("listening for events on \(client.socketPath); Ctrl-C to stop\n")
            }
            while true {
                guard let notification = try client.nextNotification(timeout: nil) else { continue }
                guard notification.method == "event", let event = notification.params else { continue }
                Terminal.write((global.json ? event.serialized() : EventLine.render(event)) + "\n")
            }
        }
    }
}
