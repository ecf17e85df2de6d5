import ArgumentParser
import SMETSCore
import SMETSRPC

struct Meter: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Act as the supplier on a meter's prepayment (ESME or GPF).",
        subcommands: [MeterDebt.self])
}

struct MeterDebt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debt",
        abstract: "Read a meter's balances and debt, or set its debt and how it accrues and is recovered.",
        discussion: """
            A meter owes what its AccumulatedDebt says. --per-day is time-based debt: the meter adds it \
            at the end of every day on the virtual clock. --recovery-percent is payment-based recovery: \
            that share of each top-up goes to the debt first (up to what is owed), and the collection \
            enters the meter's debt repayment log, which a PPMID fetches with GetDebtRepaymentLog. Each \
            option left out stays as it is. Pence 0-10000000, percent 0-100. Admin only.

            Examples:
              smetsctl meter debt 00-DB-12-34-56-78-00-02
              smetsctl meter debt 00-DB-12-34-56-78-00-02 --debt 2000 --per-day 50 --recovery-percent 25
              smetsctl meter debt 00-DB-12-34-56-78-00-02 --json

            Refusals (exit 1): invalid_state (not an ESME or GPF), device_not_found, not_authorised.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The ESME or GPF.", valueName: "device-id"), transform: ArgumentValues.deviceID)
    var device: EUI64

    @Option(help: ArgumentHelp("The debt owed, in pence.", valueName: "pence"))
    var debt: Int64?

    @Option(name: .customLong("per-day"), help: ArgumentHelp("Time-based debt added at the end of each day, in pence.", valueName: "pence"))
    var perDay: Int64?

    @Option(name: .customLong("recovery-percent"), help: ArgumentHelp("The share of each top-up that recovers debt.", valueName: "percent"))
    var recoveryPercent: Int64?

    func validate() throws {
        for (name, value) in [("--debt", debt), ("--per-day", perDay)] {
            if let value, !(0...10_000_000).contains(value) { throw ValidationError("\(name) must be 0...10000000 pence") }
        }
        if let recoveryPercent, !(0...100).contains(recoveryPercent) { throw ValidationError("--recovery-percent must be 0...100") }
    }

    func run() throws {
        var params: [String: JSONValue] = ["device": .string(device.description)]
        if let debt { params["debt"] = .int(debt) }
        if let perDay { params["perDay"] = .int(perDay) }
        if let recoveryPercent { params["recoveryPercent"] = .int(recoveryPercent) }
        let result = try global.session { try $0.call("meter.debt", params: .object(params)) }
        global.output(result) { result in
            let keys = ["credit", "emergencyCredit", "debt", "perDay", "recoveryPercent"]
            return TextTable(headers: ["CREDIT", "EMERGENCY", "DEBT", "PER DAY", "RECOVERY %"], rows: [keys.map { Format.text(result[$0]) }])
                .render(emphasiseHeader: Terminal.stylesStandardOutput)
        }
    }
}
