import ArgumentParser
import SMETSCore
import SMETSRPC

struct FirmwareActivateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "activate",
        abstract: "Activate the image a device holds (Activate Firmware, DUIS CS06).",
        discussion: """
            Outcomes, as CS06 numbers them: 0 success, 1 no image held, 2 hash mismatch, 3 activation \
            failure. With --at the activation is a durable job on the virtual clock that fires once. \
            Exits 1 unless the outcome is 0.

            Examples:
              smetsctl firmware activate 00-DB-12-34-56-78-00-05 --hash 9f86d081884c7d65...
              smetsctl firmware activate 00-DB-12-34-56-78-00-05 --at 2027-01-01T02:00:00Z
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The device.", valueName: "device-id"), transform: ArgumentValues.deviceID)
    var device: EUI64

    @Option(help: ArgumentHelp("The SHA-256 of the Manufacturer Image the device must hold.", valueName: "hash"))
    var hash: String?

    @Option(help: ArgumentHelp("Activate at this time on the virtual clock instead of now.", valueName: "time"), transform: ArgumentValues.time)
    var at: String?

    func run() throws {
        var params: [String: JSONValue] = ["device": .string(device.description)]
        if let hash { params["hash"] = .string(hash) }
        if let at { params["time"] = .string(at) }
        let result = try global.session { try $0.call("firmware.activate", params: .object(params)) }
        global.output(result) { result in
            "\(device): \(Format.text(result["outcome"])) \(Format.text(result["outcomeName"])): \(Format.text(result["reason"]))\n"
        }
        if result["outcome"]?.intValue != 0 { throw ExitCode(ExitStatus.refused) }
    }
}

struct FirmwareVersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Show a device's firmware: what it runs, what it presents, what it holds.",
        discussion: """
            Example:
              smetsctl firmware version 00-DB-12-34-56-78-00-05
              -> 00-DB-12-34-56-78-00-05 runs 01020300 (presents 01020300 in SMETS2+), Commissioned; holds nothing
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The device.", valueName: "device-id"), transform: ArgumentValues.deviceID)
    var device: EUI64

    func run() throws {
        let result = try global.session { try $0.call("firmware.version", params: ["device": .string(device.description)]) }
        global.output(result) { result in
            var text = "\(device) runs \(Format.text(result["firmwareVersion"])) (presents \(Format.text(result["presentedFirmwareVersion"])) in \(Format.text(result["mode"]))), \(Format.text(result["status"]))"
            if let held = result["held"], !held.isNull {
                text += "; holds \(Format.text(held["fileVersion"])) \(Format.text(held["hash"])) (\(Format.text(held["status"])))"
                if let at = held["activateAt"]?.stringValue { text += " activating at \(at)" }
            } else {
                text += "; holds nothing"
            }
            if let download = result["download"], !download.isNull {
                text += "; downloading \(Format.text(download["fileOffset"]))/\(Format.text(download["imageSize"])) bytes"
            }
            return text + "\n"
        }
    }
}
