import ArgumentParser
import SMETSCore
import SMETSRPC

struct DevicesCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Add a device to the inventory, at a premises, of a model.",
        discussion: """
            The device starts Whitelisted (or --status), on no hub. Without --id, smetsd allocates one \
            and the output shows it.

            Examples:
              smetsctl devices create --type IHD --premises P0001 --model acme-ihd
              smetsctl devices create --type PPMID --premises P0001 --model acme-ppmid-dm \\
                  --id 00-DB-12-34-56-78-90-B0 --owner MAP-ALPHA --prenotified SMETS1
              id=$(smetsctl devices create --type IHD --premises P0001 --model acme-ihd --json | jq -r .id)
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The device type: GSME, ESME, CHF, GPF, HCALCS, PPMID or IHD.", valueName: "type"),
            transform: ArgumentValues.deviceType)
    var type: DeviceType

    @Option(help: ArgumentHelp("The premises it is at, e.g. P0001.", valueName: "premises"))
    var premises: String

    @Option(help: ArgumentHelp("The device model key from the lab, e.g. acme-ihd.", valueName: "model"))
    var model: String

    @Option(help: ArgumentHelp("Its ID; smetsd allocates one when left out.", valueName: "id"),
            transform: ArgumentValues.deviceID)
    var id: EUI64?

    @Option(help: ArgumentHelp("The owning supplier or MAP, e.g. MAP-ALPHA.", valueName: "owner"))
    var owner: String?

    @Option(name: .customLong("prenotified"),
            help: ArgumentHelp("The SMETS version the supplier pre-notified: SMETS1 or SMETS2+.", valueName: "version"),
            transform: ArgumentValues.version)
    var preNotified: SMETSVersion?

    @Option(help: ArgumentHelp("Its inventory status (smetsd's default: Whitelisted).", valueName: "status"),
            transform: ArgumentValues.status)
    var status: InventoryStatus?

    var params: JSONValue {
        var params: [String: JSONValue] = [
            "type": .string(type.name), "premises": .string(premises), "model": .string(model),
        ]
        if let id { params["id"] = .string(id.description) }
        if let owner { params["owner"] = .string(owner) }
        if let preNotified { params["preNotified"] = .string(preNotified.rawValue) }
        if let status { params["status"] = .string(status.rawValue) }
        return .object(params)
    }

    func run() throws {
        let device = try global.session { try $0.call("devices.create", params: params) }
        global.output(device) { "created \(Format.text($0["id"]))\n" + Format.deviceDetails($0) }
    }
}
