import ArgumentParser
import SMETSCore
import SMETSRPC

struct HANLinks: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "links",
        abstract: "List the HAN links open now, with the IDs a fault rule can name (fault add --link).",
        discussion: """
            Columns: ID, DEVICE (attached to), RIG (the node EUI-64 of its HELLO), PID and UID (the rig \
            process, from SO_PEERCRED), ATTACHED (virtual time). A rig finds its own link by its PID \
            or its node EUI-64; the han.attached event names the link too.

            Examples:
              smetsctl han links
              smetsctl han links --device 00-DB-12-34-56-78-00-05 --json
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Only the links attached to this device.", valueName: "id"), transform: ArgumentValues.deviceID)
    var device: EUI64?

    func run() throws {
        let params: JSONValue = device.map { ["device": .string($0.description)] } ?? [:]
        let result = try global.session { try $0.call("han.links", params: params) }
        global.output(result) { result in
            let links = result["links"]?.arrayValue ?? []
            guard !links.isEmpty else { return "no HAN link is open\n" }
            let rows = links.map { link in
                ["id", "device", "rig", "pid", "uid", "attachedAt"].map { Format.text(link[$0]) }
            }
            return TextTable(headers: ["ID", "DEVICE", "RIG", "PID", "UID", "ATTACHED"], rows: rows)
                .render(emphasiseHeader: Terminal.stylesStandardOutput)
        }
    }
}
