import ArgumentParser
import SMETSRPC

struct Supplier: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Change of Supplier: the meter tells the displays of a new energy supplier.",
        discussion: """
            Example:
              smetsctl supplier change P0001 --provider 0000ABCD --name "New Energy"

            See docs/tenancy.md.
            """,
        subcommands: [SupplierChange.self])
}

struct SupplierChange: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "change",
        abstract: "Change the supplier at a premises: the meter sends PublishChangeOfSupplier to its displays.",
        discussion: """
            The new provider is recorded for the premises; its devices stay joined, commissioned and \
            upgradable. Prints the displays that were told.

            Examples:
              smetsctl supplier change P0001 --provider 0000ABCD --name "New Energy"
              -> P0001: supplier now 0000ABCD (New Energy); told 2 displays
                 00-DB-12-34-56-78-00-05
                 00-DB-12-34-56-78-00-06
              smetsctl supplier change P0002 --provider 00001234 --json

            Refusals (exit 1): premises_not_found; invalid_state when the premises has no ESME or GPF.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The premises, e.g. P0001.", valueName: "premises"))
    var premises: String

    @Option(help: ArgumentHelp("The new supplier's provider ID, 8 hex digits, e.g. 0000ABCD.", valueName: "hex8"),
            transform: ArgumentValues.providerID)
    var provider: String

    @Option(help: ArgumentHelp("The new supplier's name, at most 16 bytes (the ZCL ProposedProviderName).", valueName: "name"))
    var name: String?

    func validate() throws {
        if let name, name.utf8.count > 16 {
            throw ValidationError("--name is \(name.utf8.count) bytes; the ZCL ProposedProviderName holds at most 16")
        }
    }

    func run() throws {
        var params: [String: JSONValue] = ["premises": .string(premises), "provider": .string(provider)]
        if let name { params["name"] = .string(name) }
        let result = try global.session { try $0.call("supplier.change", params: .object(params)) }
        global.output(result) { result in
            let notified = result["notified"]?.arrayValue ?? []
            let named = name.map { " (\($0))" } ?? ""
            let count = notified.count == 1 ? "1 display" : "\(notified.count) displays"
            return "\(Format.text(result["premises"])): supplier now \(Format.text(result["provider"]))\(named); told \(count)\n"
                + notified.map { Format.text($0) + "\n" }.joined()
        }
    }
}
