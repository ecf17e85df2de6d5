import ArgumentParser
import SMETSRPC
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct Call: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Call any control method with raw JSON params and print the raw result.",
        discussion: """
            For scripts, and for methods without a command of their own (docs/control-api.md lists \
            them all). The params are one JSON object (by name) or array (by position); - reads them \
            from standard input. The result is printed as indented JSON, or with --json as one line.

            Exit status as for every command: 1 when smetsd refuses (the error on standard error, as \
            JSON with --json), 2 when the params are not JSON.

            Examples:
              smetsctl call daemon.status
              smetsctl call devices.list '{"type":"PPMID","limit":2}'
              smetsctl call clock.advance '{"hours":2}' --json
              smetsctl call han.trace '{"device":"00-DB-12-34-56-78-00-05","limit":5}'
              echo '{"id":"00-DB-12-34-56-78-00-05"}' | smetsctl call assets.get -
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The control method, e.g. daemon.status or devices.list.", valueName: "method"))
    var method: String

    @Argument(help: ArgumentHelp("The params: a JSON object or array, or - to read them from standard input.", valueName: "json-params"))
    var params: String?

    func validate() throws {
        if method.isEmpty || method.contains(where: { $0.isWhitespace }) {
            throw ValidationError("'\(method)' is not a method name; write it like daemon.status")
        }
        if let params, params != "-" { _ = try Self.parse(params) }
    }

    /// The params as JSON; a usage error when they are not a JSON object or array.
    static func parse(_ text: String) throws -> JSONValue {
        let value: JSONValue
        do {
            value = try JSONValue.parse(text)
        } catch {
            throw ValidationError("the params are not valid JSON: \(error.description); write them like '{\"id\":\"00-DB-12-34-56-78-00-05\"}'")
        }
        switch value {
        case .object, .array: return value
        default: throw ValidationError("the params must be a JSON object or array, not \(value.serialized())")
        }
    }

    static func readStandardInput() -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if count > 0 {
                bytes += buffer[..<count]
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func run() throws {
        let value = try params.map { $0 == "-" ? try Self.parse(Self.readStandardInput()) : try Self.parse($0) }
        let result = try global.session { try $0.call(method, params: value) }
        global.output(result) { $0.prettyPrinted() + "\n" }
    }
}
