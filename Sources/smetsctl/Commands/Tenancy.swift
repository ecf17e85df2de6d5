import ArgumentParser
import SMETSCore
import SMETSRPC

struct Tenancy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Change of Tenancy: clear the prior occupant's data from the displays (SECMP0056).",
        discussion: """
            Examples:
              smetsctl tenancy change P0001
              smetsctl tenancy change P0001 P0002 --clear consumption,supplier
              smetsctl tenancy change P0001 --at 2027-01-01T00:00:00Z

            See docs/tenancy.md.
            """,
        subcommands: [TenancyChange.self])
}

struct TenancyChange: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "change",
        abstract: "Change the tenancy at premises: their displays clear the old occupant's data.",
        discussion: """
            The premises' meter records the Change of Tenancy date and sends PublishChangeOfTenancy \
            to every display joined there. At the implementation time on the virtual clock (--at; \
            default now) each display deletes what the control bitmap selects and its model keeps. \
            Several premises change in one transaction.

            What to clear: --clear with a comma-separated list of

              consumption  bit 8   historic consumption         (consumptionHistory)
              consumer     bit 9   data the consumer entered    (consumerData)
              supplier     bit 10  messages from the supplier   (supplierMessages)
              topups       bit 13  the top-up transaction log   (topUpLog)
              debt         bit 14  the debt-recovery log        (debtLog)

            or all; or the bitmap itself with --control. Default: all five (control 26368).

            Prints a line saying when and what, then a table, DEVICE STATE CONSUMPTION CONSUMER \
            SUPPLIER TOPUPS DEBT: per display, how many records of each category it deleted, "-" \
            where the category was not selected or the device's model keeps no such data. A change \
            in the future is "pending" instead: a durable job that runs once at its time, also across \
            restarts. --json prints the result, with devices[].cleared holding the counts.

            Examples:
              smetsctl tenancy change P0001
              smetsctl tenancy change P0001 P0002 --clear supplier,topups
              smetsctl tenancy change P0001 --control 0x0400 --at 2027-01-01T00:00:00Z
              smetsctl tenancy change P0001 --json | jq '.devices[].cleared'

            Refusals (exit 1): premises_not_found.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The premises, e.g. P0001; several change together.", valueName: "premises"))
    var premises: [String] = []

    @Option(help: ArgumentHelp("The tenancy change control bitmap, decimal or 0x hex (default 26368: clear all).", valueName: "bitmap"),
            transform: ArgumentValues.tenancyControl)
    var control: UInt32?

    @Option(help: ArgumentHelp("What to clear, comma-separated: \(TenancyCategories.names), or all.", valueName: "categories"),
            transform: TenancyCategories.bitmap)
    var clear: UInt32?

    @Option(help: ArgumentHelp("The implementation time, RFC 3339 (default: now on the virtual clock).", valueName: "time"),
            transform: ArgumentValues.time)
    var at: String?

    func validate() throws {
        if premises.isEmpty { throw ValidationError("name at least one premises, e.g. smetsctl tenancy change P0001") }
        if control != nil && clear != nil { throw ValidationError("--control and --clear do not go together: give the bitmap or the categories") }
    }

    func run() throws {
        var params: [String: JSONValue] = premises.count == 1
            ? ["premises": .string(premises[0])]
            : ["premisesList": .array(premises.map { .string($0) })]
        if let bitmap = control ?? clear { params["control"] = JSONValue(bitmap) }
        if let at { params["implementationTime"] = .string(at) }
        let result = try global.session { try $0.call("tenancy.change", params: .object(params)) }
        global.output(result, human: Self.describe)
    }

    static func describe(_ result: JSONValue) -> String {
        let premises = result["premises"]?.arrayValue?.map { Format.text($0) }.joined(separator: ", ") ?? "-"
        let control = result["control"]?.intValue.flatMap { UInt32(exactly: $0) }
        let selected = control.map { "control \($0) (\(TenancyCategories.describe($0)))" } ?? "control -"
        let pending = result["pending"]?.boolValue == true
        let time = Format.text(result["implementationTime"])
        var text = pending
            ? "\(premises): Change of Tenancy pending until \(time), \(selected)\n"
            : "\(premises): Change of Tenancy at \(time), \(selected)\n"
        let devices = result["devices"]?.arrayValue ?? []
        if devices.isEmpty { return text + "no displays are joined there: nothing to clear\n" }
        var table = TextTable(headers: ["DEVICE", "STATE"] + TenancyCategories.all.map { $0.name.uppercased() })
        for device in devices {
            guard let cleared = device["cleared"]?.objectValue else {
                table.rows.append([Format.text(device["id"]), pending ? "pending" : "notified"])
                continue
            }
            table.rows.append([Format.text(device["id"]), "cleared"] + TenancyCategories.all.map { Format.text(cleared[$0.category.rawValue]) })
        }
        if pending { table.headers = ["DEVICE", "STATE"] }
        text += table.render(emphasiseHeader: Terminal.stylesStandardOutput)
        return text
    }
}
