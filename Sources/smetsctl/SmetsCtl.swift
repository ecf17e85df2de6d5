import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@main
struct SmetsCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smetsctl",
        abstract: "Control smetsd, the GB smart-metering device emulator.",
        discussion: """
            smetsctl is a thin client of smetsd's control API: JSON-RPC 2.0, one JSON object a line, \
            over the Unix socket control.sock. Every command takes --socket, --json and --timeout.

            Examples:
              smetsctl status
              smetsctl devices list --type PPMID --premises P0001
              smetsctl devices create --type IHD --premises P0001 --model acme-ihd
              smetsctl han join 00-DB-12-34-56-78-90-A1 --hub 00-DB-12-34-56-78-00-01
              smetsctl clock advance 1d
              smetsctl events --type device.joined --type device.left
              smetsctl devices show 00-DB-12-34-56-78-90-A1 --json | jq -r .status

            The socket: --socket, else $SMETSD_SOCKET, else $RUNTIME_DIRECTORY/control.sock, else \
            /run/smetsd/control.sock if it exists, else devices/.run/control.sock (where `swift run smetsd` \
            puts it).

            Exit codes:
              0  success
              1  smetsd refused the request: an application or JSON-RPC error, printed as
                 error: <message> (<reason>, code N)
              2  usage error: the command line is wrong
              3  smetsd is not running, or its socket cannot be reached
              4  protocol or I/O failure, or no answer within --timeout
            """,
        version: "0.1.0",
        subcommands: [Status.self, Devices.self, HAN.self, Inventory.self, Clock.self, Events.self, Lab.self, Firmware.self,
                      Assets.self, Tenancy.self, Supplier.self, Display.self, Meter.self, DUIS.self, Call.self, Fault.self])

    /// `arguments` with the global options written before the subcommand (`smetsctl --json status`)
    /// moved to its end, where the subcommand's parser looks for them.
    static func hoistingGlobalOptions(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            if argument == "--json" || argument.hasPrefix("--socket=") || argument.hasPrefix("--timeout=") {
                leading.append(argument)
                index += 1
            } else if argument == "--socket" || argument == "--timeout", index + 1 < arguments.endIndex {
                leading += [argument, arguments[index + 1]]
                index += 2
            } else {
                break
            }
        }
        guard !leading.isEmpty else { return arguments }
        var rest = Array(arguments[index...])
        let terminator = rest.firstIndex(of: "--") ?? rest.endIndex
        rest.insert(contentsOf: leading, at: terminator)
        return rest
    }

    /// Runs the command, keeping the exit codes the help promises (ArgumentParser alone would
    /// exit 64 on usage errors and 1 on unexpected ones).
    static func main() {
        signal(SIGPIPE, SIG_DFL)
        do {
            var command = try parseAsRoot(hoistingGlobalOptions(Array(CommandLine.arguments.dropFirst())))
            try command.run()
        } catch let code as ExitCode {
            terminate(code.rawValue)
        } catch {
            switch exitCode(for: error) {
            case .success:
                exit(withError: error) // --help, --version
            case .validationFailure:
                Terminal.writeError(fullMessage(for: error) + "\n")
                terminate(ExitStatus.usage)
            default:
                Terminal.writeError("error: \(fullMessage(for: error))\n")
                terminate(ExitStatus.failure)
            }
        }
    }
}
