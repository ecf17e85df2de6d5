import ArgumentParser
import SMETSCore
import SMETSRPC

struct Inventory: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask the emulated DCC to change its Smart Metering Inventory (SMI).",
        subcommands: [InventoryCorrect.self])
}

struct InventoryCorrect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "correct",
        abstract: "Correct the SMETS version the SMI holds for a PPMID joined to a hub of the other version.",
        discussion: """
            Under the DCC's interim solution (cplRegime "interim" in lab.json) the SMI keeps the SMETS \
            version the supplier pre-notified. A PPMID joined to a Communications Hub of the other \
            version is then not commissioned and cannot be the target of any service request (MP202 §2, \
            "What is the issue?"), until the supplier asks the DCC for a manual SMI change. This is that \
            request: the SMI takes the hub's version and the PPMID is commissioned (or suspended when \
            its identity is not on the CPL). Under the MP202 regime the DCC takes the hub's version by \
            itself and there is nothing to correct.

            Example:
              smetsctl inventory correct 00-DB-12-34-56-78-00-05
              -> 00-DB-12-34-56-78-00-05 is SMETS2+ in the SMI (Commissioned)

            Refusals (exit 1): invalid_state (nothing to correct), not_joined, device_not_found.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The PPMID whose SMI record to correct.", valueName: "device-id"), transform: ArgumentValues.deviceID)
    var device: EUI64

    func run() throws {
        let result = try global.session { try $0.call("inventory.correct", params: ["device": .string(device.description)]) }
        global.output(result) { result in
            let transitions = result["transitions"]?.arrayValue?.map { Format.text($0) } ?? []
            return "\(device) is \(Format.text(result["smetsVersion"])) in the SMI (\(transitions.joined(separator: " -> ")))\n"
        }
    }
}
