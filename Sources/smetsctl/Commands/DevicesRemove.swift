import ArgumentParser
import SMETSCore
import SMETSRPC

struct DevicesRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove a device from the inventory (it leaves its hub first).",
        discussion: """
            Example:
              smetsctl devices remove 00-DB-12-34-56-78-90-B0
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The device's ID.", valueName: "id"), transform: ArgumentValues.deviceID)
    var id: EUI64

    func run() throws {
        let result = try global.session { try $0.call("devices.remove", params: ["id": .string(id.description)]) }
        global.output(result) { "removed \(Format.text($0["removed"]))\n" }
    }
}
