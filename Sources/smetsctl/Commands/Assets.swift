import ArgumentParser
import SMETSCore
import SMETSRPC

struct Assets: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Asset data (DP181): list, show and transfer the devices a MAP owns or a manufacturer made.",
        discussion: """
            An asset record is what a Meter Asset Provider or a manufacturer may know of a device: its \
            ID, type, manufacturer, model, firmware version (as the device presents it in its mode), \
            inventory status and CSP region. Never its supplier, premises or consumer data. The role \
            smetsd maps your uid to decides which assets you see (docs/access.md): a MAP its own, a \
            manufacturer the devices it made, admin all.

            Examples:
              smetsctl assets list
              smetsctl assets list --type PPMID --region North
              smetsctl assets list --csv > assets.csv
              smetsctl assets show 00-DB-12-34-56-78-00-05
              smetsctl assets transfer 00-DB-12-34-56-78-00-06 --owner MAP-BETA
            """,
        subcommands: [AssetsList.self, AssetsShow.self, AssetsTransfer.self],
        defaultSubcommand: AssetsList.self)
}

extension Format {
    /// The members of an asset record, in the order the API document lists them.
    static let assetFields: [(key: String, label: String, column: String, csv: String)] = [
        ("deviceId", "device id", "ID", "device_id"), ("deviceType", "type", "TYPE", "device_type"),
        ("manufacturer", "manufacturer", "MANUFACTURER", "manufacturer"),
        ("manufacturerId", "manufacturer id", "MFR ID", "manufacturer_id"), ("model", "model", "MODEL", "model"),
        ("modelId", "model id", "MODEL ID", "model_id"), ("firmwareVersion", "firmware", "FIRMWARE", "firmware_version"),
        ("deviceStatus", "status", "STATUS", "device_status"), ("cspRegion", "CSP region", "REGION", "csp_region"),
    ]

    static func assetTable(_ assets: [JSONValue]) -> String {
        TextTable(headers: assetFields.map(\.column), rows: assets.map { asset in assetFields.map { text(asset[$0.key]) } })
            .render(emphasiseHeader: Terminal.stylesStandardOutput)
    }

    static func assetDetails(_ asset: JSONValue) -> String {
        let members = asset.objectValue ?? [:]
        var list = KeyValueList()
        for field in assetFields { list.add(field.label, text(members[field.key])) }
        let known = Set(assetFields.map(\.key))
        for key in members.keys.sorted() where !known.contains(key) { list.add(key, text(members[key])) }
        return list.render()
    }
}

struct AssetsShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one asset record.",
        discussion: """
            Examples:
              smetsctl assets show 00-DB-12-34-56-78-00-05
              smetsctl assets show 00-DB-12-34-56-78-00-05 --json | jq -r .firmwareVersion

            Refusals (exit 1): not_authorised when the device is not one of your assets (also when it \
            does not exist, so that nobody learns of others' assets by probing); device_not_found \
            for admin.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The device's ID.", valueName: "id"), transform: ArgumentValues.deviceID)
    var id: EUI64

    func run() throws {
        let asset = try global.session { try $0.call("assets.get", params: ["id": .string(id.description)]) }
        global.output(asset, human: Format.assetDetails)
    }
}

struct AssetsTransfer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transfer",
        abstract: "Give an asset to another Meter Asset Provider (admin only).",
        discussion: """
            The next asset query follows: the old owner no longer sees the device, the new one does.

            Example:
              smetsctl assets transfer 00-DB-12-34-56-78-00-06 --owner MAP-BETA
              -> 00-DB-12-34-56-78-00-06 now belongs to MAP-BETA

            Refusals (exit 1): not_authorised unless you are admin, device_not_found.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The device's ID.", valueName: "id"), transform: ArgumentValues.deviceID)
    var id: EUI64

    @Option(help: ArgumentHelp("The new owner, a MAP's ID, e.g. MAP-BETA.", valueName: "map"))
    var owner: String

    func validate() throws {
        guard !owner.trimmingWhitespace().isEmpty else { throw ValidationError("--owner must name a MAP, e.g. MAP-BETA") }
    }

    func run() throws {
        let params: JSONValue = ["id": .string(id.description), "owner": .string(owner)]
        let result = try global.session { try $0.call("assets.transfer", params: params) }
        global.output(result) { "\(Format.text($0["deviceId"])) now belongs to \(Format.text($0["owner"]))\n" }
    }
}
