import Foundation
import SMETSClient
import SMETSRPC
#if canImport(Glibc)
import Glibc
#endif

/// A real `smetsd` process on a copy-free lab with fresh state and runtime folders, for tests that
/// talk to it over its real sockets.
final class DaemonHarness: @unchecked Sendable {
    let process = Process()
    let labDirectory: String
    let stateDirectory: String
    let runtimeDirectory: String
    let logFile: String
    private(set) var exitStatus: Int32?

    static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// The built binary: $SMETSD_BIN, else beside the test bundle (swift build puts products together).
    static func binary(_ name: String) -> String {
        if let path = ProcessInfo.processInfo.environment[name.uppercased() + "_BIN"] { return path }
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [bundleDir, bundleDir.deletingLastPathComponent(), URL(fileURLWithPath: packageRoot + "/.build/debug")] {
            let path = candidate.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return packageRoot + "/.build/debug/" + name
    }

    /// A short scratch folder (Unix socket paths must stay under 108 bytes).
    static func scratch(_ tag: String) -> String {
        var template = Array("/tmp/smetsd-\(tag)-XXXXXX".utf8CString)
        let path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        return path
    }

    /// A copy of the shipped devices folder that a test may change.
    static func copyOfLab(settings: String? = nil) throws -> String {
        let target = scratch("lab")
        let source = packageRoot + "/devices"
        for item in ["models", "keys", "lab.json", "cpl.csv"] where FileManager.default.fileExists(atPath: source + "/" + item) {
            try FileManager.default.copyItem(atPath: source + "/" + item, toPath: target + "/" + item)
        }
        if let settings { try settings.write(toFile: target + "/smetsd.json", atomically: true, encoding: .utf8) }
        return target
    }

    init(lab: String? = nil, state: String? = nil, runtime: String? = nil) {
        labDirectory = lab ?? Self.packageRoot + "/devices"
        stateDirectory = state ?? Self.scratch("state")
        runtimeDirectory = runtime ?? Self.scratch("run")
        logFile = stateDirectory + "/../" + URL(fileURLWithPath: stateDirectory).lastPathComponent + ".log"
    }

    var controlPath: String { runtimeDirectory + "/control.sock" }
    var hanPath: String { runtimeDirectory + "/han.sock" }

    /// Starts the daemon and waits until `daemon.status` answers ready.
    @discardableResult
    func start(waitReady: Bool = true) throws -> DaemonHarness {
        process.executableURL = URL(fileURLWithPath: Self.binary("smetsd"))
        process.arguments = ["--lab", labDirectory, "--state", stateDirectory, "--runtime", runtimeDirectory, "--log-format", "text"]
        var environment = ProcessInfo.processInfo.environment
        for key in ["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "STATE_DIRECTORY", "RUNTIME_DIRECTORY", "INVOCATION_ID", "JOURNAL_STREAM"] {
            environment[key] = nil
        }
        process.environment = environment
        _ = FileManager.default.createFile(atPath: logFile, contents: nil)
        let log = FileHandle(forWritingAtPath: logFile)
        process.standardError = log
        process.standardOutput = log
        try process.run()
        guard waitReady else { return self }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if !process.isRunning { throw HarnessError.exited(process.terminationStatus, log: logText) }
            if let client = try? ControlClient(socketPath: controlPath, timeout: .seconds(5)),
               let status = try? client.call("daemon.status"), status["ready"]?.boolValue == true {
                client.close()
                return self
            }
            usleep(50_000)
        }
        throw HarnessError.notReady(log: logText)
    }

    var logText: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    func client() throws -> ControlClient { try ControlClient(socketPath: controlPath, timeout: .seconds(60)) }

    func call(_ method: String, _ params: JSONValue? = nil) throws -> JSONValue {
        let client = try self.client()
        defer { client.close() }
        return try client.call(method, params: params)
    }

    /// The JSON-RPC error a call fails with (and fails the test if it succeeds).
    func callError(_ method: String, _ params: JSONValue? = nil) throws -> JSONRPCError? {
        do {
            _ = try call(method, params)
            return nil
        } catch let failure as ControlClientError {
            if case .remote(let error) = failure { return error }
            throw failure
        }
    }

    /// SIGTERM, then the exit status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM) -> Int32 {
        if process.isRunning {
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
        }
        exitStatus = process.terminationStatus
        return process.terminationStatus
    }

    func kill9() { stop(signal: SIGKILL) }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
}

enum HarnessError: Error, CustomStringConvertible {
    case exited(Int32, log: String)
    case notReady(log: String)
    var description: String {
        switch self {
        case .exited(let status, let log): "smetsd exited with \(status):\n\(log)"
        case .notReady(let log): "smetsd did not become ready:\n\(log)"
        }
    }
}

/// Runs a command, returning its exit status and output.
func runCommand(_ path: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}
