import ArgumentParser
import SMETSCore
import SMETSRPC

struct HANTopUp: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topup",
        abstract: "Top up from a PPMID: it sends ConsumerTopUp to its premises' meter, which answers.",
        discussion: """
            The PPMID must be joined to a hub. The code goes to the premises' ESME (with --gas, the \
            GPF) as a Prepayment ConsumerTopUp; the meter's ConsumerTopUpResponse is printed: accepted \
            or refused with the reason, the top-up value and the credit remaining. The emulated meter \
            reads a UTRN as 20 decimal digits whose last 5 are the value in pence; it refuses a UTRN it \
            has seen (duplicate) and anything that is not 20 digits (invalid). smetsctl passes the \
            code on as it is, so a rig can test refusals.

            Exit status: 0 when the meter accepted the top-up; 1 when it refused it, the reason on \
            standard output ("refused: duplicate", as firmware activate does for its outcomes), and \
            also when smetsd refused the request (then on standard error: device_not_found, not_joined, \
            invalid_state). With --json the meter's answer is printed as it is in both cases.

            Examples:
              smetsctl han topup 00-DB-12-34-56-78-00-05 12345678901234500150
              -> accepted: value 150, credit remaining 1150
              smetsctl han topup 00-DB-12-34-56-78-00-05 12345678901234500150
              -> refused: duplicate (result 2), value 0, credit remaining 1150
              smetsctl han topup 00-DB-12-34-56-78-00-05 98765432109876500500 --gas
              smetsctl han topup 00-DB-12-34-56-78-00-05 12345678901234500150 --json
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The PPMID that tops up.", valueName: "ppmid-id"), transform: ArgumentValues.deviceID)
    var device: EUI64

    @Argument(help: ArgumentHelp("The top-up code (UTRN): 20 digits, the last 5 the value in pence.", valueName: "code"))
    var code: String

    @Flag(help: "Top up gas: send to the premises' GPF instead of the ESME.")
    var gas = false

    /// ConsumerTopUpResponse result types (ZCL Smart Energy, Prepayment cluster).
    static let results: [Int64: String] = [
        0x00: "accepted", 0x01: "invalid", 0x02: "duplicate", 0x03: "error", 0x04: "max credit reached",
        0x05: "keypad locked", 0x06: "value too large", 0x10: "accepted, supply enabled",
        0x11: "accepted, supply disabled", 0x12: "accepted, supply armed",
    ]

    static func accepted(_ result: JSONValue) -> Bool {
        result["accepted"]?.boolValue ?? (result["result"]?.intValue == 0)
    }

    static func describe(_ result: JSONValue) -> String {
        let value = "value \(Format.text(result["value"])), credit remaining \(Format.text(result["creditRemaining"]))"
        if accepted(result) { return "accepted: \(value)\n" }
        let code = result["result"]?.intValue
        let reason = code.flatMap { results[$0] } ?? "result \(Format.text(result["result"]))"
        return "refused: \(reason)\(code.map { " (result \($0))" } ?? ""), \(value)\n"
    }

    func run() throws {
        var params: [String: JSONValue] = ["device": .string(device.description), "code": .string(code)]
        if gas { params["fuel"] = "gas" }
        let result = try global.session { try $0.call("han.topUp", params: .object(params)) }
        global.output(result, human: Self.describe)
        if !Self.accepted(result) { throw ExitCode(ExitStatus.refused) }
    }
}
