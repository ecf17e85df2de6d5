import ArgumentParser
import SMETSClient
import SMETSCore
import SMETSRPC

struct AssetsList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List asset records as a table, as JSON, or as CSV.",
        discussion: """
            Assets come in device ID order, a page at a time (100 unless --limit says otherwise); \
            --all follows every page.

            --csv writes RFC 4180 CSV (CRLF line ends; a field holding a comma, quote or line break \
            is quoted) and always follows every page, writing each as it comes (--limit is then the \
            page size). The header row names the columns:

              device_id,device_type,manufacturer,manufacturer_id,model,model_id,
              firmware_version,device_status,csp_region

            (one line in the file).

            --owner and --manufacturer-id are for admin; a MAP or a manufacturer sees its own assets \
            whatever it asks for.

            Examples:
              smetsctl assets list
              smetsctl assets list --type PPMID --firmware-version 01020300
              smetsctl assets list --status Commissioned --region North --all
              smetsctl assets list --owner MAP-ALPHA --manufacturer-id 1234
              smetsctl assets list --csv > assets.csv
              smetsctl assets list --all --json | jq -r '.assets[].deviceId'
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Only assets of this type: GSME, ESME, CHF, GPF, HCALCS, PPMID or IHD.", valueName: "type"),
            transform: ArgumentValues.deviceType)
    var type: DeviceType?

    @Option(help: ArgumentHelp("Only assets of this model key, e.g. acme-ppmid-dm.", valueName: "model"))
    var model: String?

    @Option(help: ArgumentHelp("Only assets presenting this firmware version, 8 hex digits, e.g. 01020300.", valueName: "version"),
            transform: ArgumentValues.firmwareVersion)
    var firmwareVersion: String?

    @Option(help: ArgumentHelp("Only assets with this inventory status, e.g. Commissioned.", valueName: "status"),
            transform: ArgumentValues.status)
    var status: InventoryStatus?

    @Option(help: ArgumentHelp("Only assets in this CSP region: North, Central or South.", valueName: "region"),
            transform: ArgumentValues.region)
    var region: CSPRegion?

    @Option(help: ArgumentHelp("Only assets this MAP owns, e.g. MAP-ALPHA (admin).", valueName: "map"))
    var owner: String?

    @Option(help: ArgumentHelp("Only assets this manufacturer made, its 4-hex-digit ID, e.g. 1234 (admin).", valueName: "code"),
            transform: ArgumentValues.manufacturerID)
    var manufacturerId: String?

    @Option(help: ArgumentHelp("Assets per page, 1 to 1000 (smetsd's default: 100).", valueName: "n"))
    var limit: Int?

    @Option(help: ArgumentHelp("Start at this page: the nextCursor of the page before.", valueName: "cursor"))
    var cursor: String?

    @Flag(help: "Follow nextCursor through every page.")
    var all = false

    @Flag(help: "Write RFC 4180 CSV with a header row, following every page.")
    var csv = false

    func validate() throws {
        if let limit, !(1...1000).contains(limit) {
            throw ValidationError("--limit must be between 1 and 1000, not \(limit)")
        }
        if csv && global.json { throw ValidationError("--csv and --json do not go together: choose one") }
    }

    var filters: [String: JSONValue] {
        var params: [String: JSONValue] = [:]
        if let type { params["type"] = .string(type.name) }
        if let model { params["model"] = .string(model) }
        if let firmwareVersion { params["firmwareVersion"] = .string(firmwareVersion) }
        if let status { params["status"] = .string(status.rawValue) }
        if let region { params["region"] = .string(region.rawValue) }
        if let owner { params["owner"] = .string(owner) }
        if let manufacturerId { params["manufacturerId"] = .string(manufacturerId) }
        if let limit { params["limit"] = JSONValue(limit) }
        return params
    }

    /// Calls assets.list from `cursor` on, handing each page to `page` until it returns false or
    /// there is no next page.
    func pages(_ client: ControlClient, _ page: (JSONValue) throws -> Bool) throws {
        var params = filters
        var next = cursor
        while true {
            if let next { params["cursor"] = .string(next) }
            let result = try client.call("assets.list", params: .object(params))
            guard try page(result), let following = result["nextCursor"]?.stringValue, following != next else { return }
            next = following
        }
    }

    func run() throws {
        if csv {
            try global.session { client in
                Terminal.write(CSV.record(Format.assetFields.map(\.csv)))
                try pages(client) { page in
                    let rows = (page["assets"]?.arrayValue ?? []).map { asset in
                        CSV.record(Format.assetFields.map { CSV.text(asset[$0.key]) })
                    }
                    Terminal.write(rows.joined())
                    return true
                }
            }
            return
        }
        let result = try global.session { client in
            var assets: [JSONValue] = []
            var first: JSONValue?
            try pages(client) { page in
                first = first ?? page
                assets += page["assets"]?.arrayValue ?? []
                return all
            }
            guard all, let first else { return first ?? ["assets": [], "nextCursor": nil, "total": 0] }
            return .object(["assets": .array(assets), "nextCursor": .null, "total": first["total"] ?? JSONValue(assets.count)])
        }
        global.output(result) { page in
            let assets = page["assets"]?.arrayValue ?? []
            if assets.isEmpty { return "no assets\n" }
            return Format.assetTable(assets)
        }
        if !global.json, let next = result["nextCursor"]?.stringValue {
            let shown = result["assets"]?.arrayValue?.count ?? 0
            let total = result["total"]?.intValue.map { " of \($0)" } ?? ""
            Terminal.writeError("showing \(shown)\(total); for more, add --all or --cursor \(next)\n")
        }
    }
}
