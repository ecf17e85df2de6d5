import ArgumentParser
import SMETSCore
import SMETSRPC

struct Display: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Act as the consumer at a display's keypad (PPMID or IHD).",
        subcommands: [DisplaySettings.self])
}

struct DisplaySettings: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settings",
        abstract: "Read a display's consumer settings, or change some (NAME=VALUE ...).",
        discussion: """
            Settings the consumer makes on the display (a budget, an alert, the brightness) are \
            consumer data: a Change of Tenancy with bit 9 (clear IHD data (consumer)) clears those made \
            up to its time, where the model keeps and clears consumerData; those made after stay. A \
            display holds at most 32, names of 1-32 printable ASCII characters, values up to 64 bytes.

            Examples:
              smetsctl display settings 00-DB-12-34-56-78-00-05
              smetsctl display settings 00-DB-12-34-56-78-00-05 budget=300 alert=on
              smetsctl display settings 00-DB-12-34-56-78-00-05 --json

            Refusals (exit 1): invalid_state (not a display, or its model keeps no consumer data, or \
            over a limit), device_not_found.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The PPMID or IHD.", valueName: "device-id"), transform: ArgumentValues.deviceID)
    var device: EUI64

    @Argument(help: ArgumentHelp("Settings to make, NAME=VALUE.", valueName: "name=value"))
    var changes: [String] = []

    func validate() throws {
        for change in changes where !change.contains("=") || change.hasPrefix("=") {
            throw ValidationError("'\(change)' is not NAME=VALUE, e.g. budget=300")
        }
    }

    func run() throws {
        var params: [String: JSONValue] = ["device": .string(device.description)]
        if !changes.isEmpty {
            var set: [String: JSONValue] = [:]
            for change in changes {
                let parts = change.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                set[String(parts[0])] = .string(parts.count > 1 ? String(parts[1]) : "")
            }
            params["set"] = .object(set)
        }
        let result = try global.session { try $0.call("display.settings", params: .object(params)) }
        global.output(result) { result in
            let settings = result["settings"]?.objectValue ?? [:]
            if settings.isEmpty { return "\(device) holds no consumer settings\n" }
            return TextTable(headers: ["SETTING", "VALUE"], rows: settings.keys.sorted().map { [$0, Format.text(settings[$0])] })
                .render(emphasiseHeader: Terminal.stylesStandardOutput)
        }
    }
}
