import ArgumentParser
import SMETSCore
import SMETSRPC

struct DevicesShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one device: identity, firmware, mode, status, hub, and the data it holds.",
        discussion: """
            Examples:
              smetsctl devices show 00-DB-12-34-56-78-90-A1
              smetsctl devices show 00DB1234567890A1 --json | jq .mode

            Exits 1 with reason device_not_found when there is no such device.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The device's ID.", valueName: "id"), transform: ArgumentValues.deviceID)
    var id: EUI64

    func run() throws {
        let device = try global.session { try $0.call("devices.get", params: ["id": .string(id.description)]) }
        global.output(device, human: Format.deviceDetails)
    }
}
