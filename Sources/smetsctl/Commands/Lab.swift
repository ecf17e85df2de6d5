import ArgumentParser
import SMETSRPC

struct Lab: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Populate the lab with generated premises.",
        discussion: """
            Example:
              smetsctl lab generate --premises 1000
            """,
        subcommands: [LabGenerate.self])
}

struct LabGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Add generated premises, each with a hub, ESME, GSME+GPF, PPMID and IHD, joined and commissioned.",
        discussion: """
            Runs in one transaction; on a terminal a progress line shows while smetsd works. Waits up to \
            10 minutes unless --timeout says otherwise.

            Examples:
              smetsctl lab generate --premises 20
              smetsctl lab generate --premises 20000 --timeout 3600

            Refusals (exit 1): limit_exceeded when the configured premises limit would be passed.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("How many premises to add.", valueName: "n"))
    var premises: Int

    func validate() throws {
        guard premises > 0 else { throw ValidationError("--premises must be at least 1, not \(premises)") }
    }

    func run() throws {
        let started = ContinuousClock.now
        let result = try global.session(defaultTimeout: .seconds(600)) { client in
            let params: JSONValue = ["premises": JSONValue(premises)]
            guard !global.json, Terminal.standardErrorIsTTY else {
                return try client.call("lab.generate", params: params)
            }
            return try Spinner.run("generating \(premises) premises") {
                try client.call("lab.generate", params: params)
            }
        }
        let elapsed = ContinuousClock.now - started
        global.output(result) { result in
            "generated \(Format.text(result["premises"])) premises with \(Format.text(result["devices"])) devices in \(Spinner.seconds(elapsed))\n"
        }
    }
}
