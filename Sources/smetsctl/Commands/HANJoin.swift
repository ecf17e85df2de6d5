import ArgumentParser
import SMETSCore
import SMETSRPC

struct HANJoin: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "join",
        abstract: "Join a PPMID or IHD to a Communications Hub; MP202 decides its SMETS mode.",
        discussion: """
            The device must be a PPMID or IHD at the hub's premises and Whitelisted (a device joined to \
            another hub leaves that one first). Under MP202 the hub's SMETS version decides the mode a \
            dual-mode PPMID works in, whatever the supplier pre-notified.

            Example:
              smetsctl han join 00-DB-12-34-56-78-90-A1 --hub 00-DB-12-34-56-78-00-01
              -> 00-DB-12-34-56-78-90-A1 joined hub 00-DB-12-34-56-78-00-01 in SMETS2+ mode \
            (InstalledNotCommissioned -> Commissioned)

            Refusals (exit 1): not_a_hub, not_joinable, device_not_found.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The PPMID or IHD to join.", valueName: "device-id"), transform: ArgumentValues.deviceID)
    var device: EUI64

    @Option(help: ArgumentHelp("The Communications Hub (CHF) to join.", valueName: "hub-id"), transform: ArgumentValues.deviceID)
    var hub: EUI64

    func run() throws {
        let params: JSONValue = ["device": .string(device.description), "hub": .string(hub.description)]
        let result = try global.session { try $0.call("han.join", params: params) }
        global.output(result) { result in
            let transitions = result["transitions"]?.arrayValue?.map { Format.text($0) } ?? []
            let path = transitions.isEmpty ? "" : " (\(transitions.joined(separator: " -> ")))"
            return "\(device) joined hub \(hub) in \(Format.text(result["mode"] ?? result["device"]?["mode"])) mode\(path)\n"
        }
    }
}
