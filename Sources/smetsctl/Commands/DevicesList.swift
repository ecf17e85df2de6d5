import ArgumentParser
import SMETSCore
import SMETSRPC

struct DevicesList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List devices in ID order, filtered, a page at a time.",
        discussion: """
            Prints a table: ID, TYPE, PREMISES, MODEL, MODE, STATUS, FIRMWARE. Filters combine: a device \
            is listed when it matches all of them. smetsd answers a page at a time (--limit, default 100); \
            a note on standard error says when there are more, and --all fetches every page.

            Examples:
              smetsctl devices list --type PPMID --mode SMETS1
              smetsctl devices list --hub 00-DB-12-34-56-78-00-01
              smetsctl devices list --status Whitelisted --all
              smetsctl devices list --all --json | jq -r '.devices[].id'
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Only devices of this type: GSME, ESME, CHF, GPF, HCALCS, PPMID or IHD.", valueName: "type"),
            transform: ArgumentValues.deviceType)
    var type: DeviceType?

    @Option(help: ArgumentHelp("Only devices at this premises, e.g. P0001.", valueName: "premises"))
    var premises: String?

    @Option(help: ArgumentHelp("Only devices with this inventory status, e.g. Whitelisted or Commissioned.", valueName: "status"),
            transform: ArgumentValues.status)
    var status: InventoryStatus?

    @Option(help: ArgumentHelp("Only devices in this SMETS mode: undetermined, SMETS1 or SMETS2+.", valueName: "mode"),
            transform: ArgumentValues.mode)
    var mode: SMETSMode?

    @Option(help: ArgumentHelp("Only devices of this model key, e.g. acme-ppmid-dm.", valueName: "model"))
    var model: String?

    @Option(help: ArgumentHelp("Only devices joined to this hub (a CHF's ID).", valueName: "hub-id"),
            transform: ArgumentValues.deviceID)
    var hub: EUI64?

    @Option(help: ArgumentHelp("Devices per page, 1 to 1000 (smetsd's default: 100).", valueName: "n"))
    var limit: Int?

    @Option(help: ArgumentHelp("Start at this page: the nextCursor of the page before.", valueName: "cursor"))
    var cursor: String?

    @Flag(help: "Follow nextCursor through every page.")
    var all = false

    func validate() throws {
        if let limit, !(1...1000).contains(limit) {
            throw ValidationError("--limit must be between 1 and 1000, not \(limit)")
        }
    }

    var filters: [String: JSONValue] {
        var params: [String: JSONValue] = [:]
        if let type { params["type"] = .string(type.name) }
        if let premises { params["premises"] = .string(premises) }
        if let status { params["status"] = .string(status.rawValue) }
        if let mode { params["mode"] = .string(mode.name) }
        if let model { params["model"] = .string(model) }
        if let hub { params["hub"] = .string(hub.description) }
        if let limit { params["limit"] = JSONValue(limit) }
        return params
    }

    func run() throws {
        let result = try global.session { client in
            var params = filters
            var next = cursor
            var devices: [JSONValue] = []
            var total: JSONValue?
            while true {
                if let next { params["cursor"] = .string(next) }
                let page = try client.call("devices.list", params: .object(params))
                guard all else { return page }
                devices += page["devices"]?.arrayValue ?? []
                total = total ?? page["total"]
                guard let following = page["nextCursor"]?.stringValue, following != next else {
                    return .object(["devices": .array(devices), "nextCursor": .null, "total": total ?? JSONValue(devices.count)])
                }
                next = following
            }
        }
        global.output(result) { page in
            let devices = page["devices"]?.arrayValue ?? []
            if devices.isEmpty { return "no devices\n" }
            return Format.deviceTable(devices)
        }
        if !global.json, let next = result["nextCursor"]?.stringValue {
            let shown = result["devices"]?.arrayValue?.count ?? 0
            let total = result["total"]?.intValue.map { " of \($0)" } ?? ""
            Terminal.writeError("showing \(shown)\(total); for more, add --all or --cursor \(next)\n")
        }
    }
}
