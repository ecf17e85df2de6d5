import ArgumentParser
import SMETSCore
import SMETSRPC

struct HANLeave: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leave",
        abstract: "Take a device off its hub: its mode becomes undetermined, its status Whitelisted.",
        discussion: """
            Example:
              smetsctl han leave 00-DB-12-34-56-78-90-A1

            Refusals (exit 1): not_joined when the device is on no hub, device_not_found.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The device to take off its hub.", valueName: "device-id"), transform: ArgumentValues.deviceID)
    var device: EUI64

    func run() throws {
        let result = try global.session { try $0.call("han.leave", params: ["device": .string(device.description)]) }
        global.output(result) { result in
            let state = result["device"]
            return "\(device) left its hub: status \(Format.text(state?["status"])), mode \(Format.text(state?["mode"]))\n"
        }
    }
}
