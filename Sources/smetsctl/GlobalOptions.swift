import ArgumentParser
import SMETSClient
import SMETSRPC

/// The exit codes smetsctl promises to scripts.
enum ExitStatus {
    /// The request succeeded.
    static let success: Int32 = 0
    /// smetsd refused the request: an application or JSON-RPC error.
    static let refused: Int32 = 1
    /// The command line was wrong.
    static let usage: Int32 = 2
    /// smetsd is not running, or its socket cannot be reached.
    static let notRunning: Int32 = 3
    /// The connection failed, timed out, or carried something that is not JSON-RPC.
    static let failure: Int32 = 4
}

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The control socket of smetsd.",
            discussion: "Default: $SMETSD_SOCKET, else $RUNTIME_DIRECTORY/control.sock, else /run/smetsd/control.sock if it exists, else devices/.run/control.sock.",
            valueName: "path"))
    var socket: String?

    @Flag(name: .long, help: "Print the raw JSON result as one line; errors go to standard error as JSON.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for smetsd to answer.", valueName: "seconds"))
    var timeout: Double?

    func validate() throws {
        if let timeout, !(timeout > 0 && timeout <= 86_400) {
            throw ValidationError("--timeout must be between 0 and 86400 seconds, not \(timeout)")
        }
    }

    var socketPath: String { socket ?? ControlClient.defaultSocketPath() }

    /// Connects, runs `body` with the client, and turns a failure into the promised exit status,
    /// after telling the user (or the script, with `--json`) what went wrong.
    func session<T>(defaultTimeout: Duration = .seconds(30), _ body: (ControlClient) throws -> T) throws -> T {
        let limit = timeout.map { Duration.milliseconds(Int64($0 * 1000)) } ?? defaultTimeout
        do {
            let client = try ControlClient(socketPath: socketPath, timeout: limit)
            defer { client.close() }
            return try body(client)
        } catch let error as ControlClientError {
            throw ExitCode(report(error))
        }
    }

    /// Prints `error` as the user asked and returns the exit status it calls for.
    func report(_ error: ControlClientError) -> Int32 {
        let status: Int32
        var object: [String: JSONValue] = ["message": .string(error.description)]
        switch error {
        case .remote(let remote):
            status = ExitStatus.refused
            object["message"] = .string(remote.message)
            object["code"] = JSONValue(remote.code)
            if let reason = remote.reason { object["reason"] = .string(reason) }
            if let data = remote.data { object["data"] = data }
        case .daemonNotRunning(let path, _):
            status = ExitStatus.notRunning
            object["reason"] = "daemon_not_running"
            object["socket"] = .string(path)
        case .io:
            status = ExitStatus.failure
            object["reason"] = "io_error"
        case .protocolError:
            status = ExitStatus.failure
            object["reason"] = "protocol_error"
        case .timeout:
            status = ExitStatus.failure
            object["reason"] = "timeout"
        }
        object["exitCode"] = JSONValue(status)
        if json {
            Terminal.writeError(JSONValue.object(["error": .object(object)]).serialized() + "\n")
        } else {
            Terminal.writeError("error: \(error.description)\n")
        }
        return status
    }

    /// Prints a result: the raw JSON with `--json`, else what `human` makes of it.
    func output(_ result: JSONValue, human: (JSONValue) -> String) {
        if json {
            Terminal.write(result.serialized() + "\n")
        } else {
            Terminal.write(human(result))
        }
    }
}
