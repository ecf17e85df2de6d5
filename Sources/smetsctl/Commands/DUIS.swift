import ArgumentParser
import Foundation
import SMETSRPC
#if canImport(Glibc)
import Glibc
#endif

struct DUIS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "duis",
        abstract: "Send DUIS service requests to the emulated DCC and read its asynchronous responses.",
        discussion: """
            smetsd's DUIS front listens on duis.sock (and on TCP when duis.tcp is set); these commands \
            reach it through the control API instead, so no HTTP client is needed. See docs/duis.md.

            Examples:
              smetsctl duis send read-firmware.xml
              smetsctl duis send activate.xml --path serviceT
              smetsctl duis responses --follow
            """,
        subcommands: [DUISSend.self, DUISResponses.self])
}

struct DUISSend: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Post a DUIS request document and print the synchronous reply, then the asynchronous ones.",
        discussion: """
            The path follows from the CommandVariant unless --path names it: 1, 3, 5, 7 go to serviceS, \
            4 to serviceT, 2, 6, 8 to serviceD. After the synchronous reply, the asynchronous responses \
            of the same RequestID are printed as they arrive, for --wait seconds (default 5; 0 to skip).

            Exit status 1 when the reply is not HTTP 200 (an HTTP refusal: 400, 413, 501...) or its \
            ResponseCode is an E code.

            Example:
              smetsctl duis send read-firmware.xml
              -> HTTP 200, I99 for 90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-00-05:1
                 <?xml ...><sr:Response ...>...</sr:Response>
                 async I0: <?xml ...>...
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The DUIS request document (- reads standard input).", valueName: "file.xml"))
    var file: String

    @Option(help: ArgumentHelp("serviceS, serviceT or serviceD (default: from the CommandVariant).", valueName: "service"))
    var path: String?

    @Option(help: ArgumentHelp("Seconds to wait for asynchronous responses.", valueName: "seconds"))
    var wait: Double = 5

    func run() throws {
        let data: Data
        if file == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let contents = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
            data = contents
        }
        let xml = String(decoding: data, as: UTF8.self)
        let service = path ?? Self.service(for: xml)
        let requestID = Self.element("RequestID", in: xml)?.trimmingCharacters(in: .whitespacesAndNewlines)
        let (reply, responses) = try global.session(defaultTimeout: .seconds(30 + wait)) { client -> (JSONValue, [JSONValue]) in
            let reply = try client.call("duis.submit", params: ["path": .string(service), "xml": .string(xml)])
            var found: [JSONValue] = []
            let body = reply["body"]?.stringValue ?? ""
            if !global.json {
                Terminal.write("HTTP \(reply["status"]?.intValue ?? 0)\(Self.element("ResponseCode", in: body).map { ", \($0)" } ?? "")\(requestID.map { " for \($0)" } ?? "")\n\(body)\n")
            }
            guard reply["status"]?.intValue == 200, Self.element("ResponseCode", in: body) == "I99", let requestID, wait > 0 else { return (reply, found) }
            let deadline = Date().addingTimeInterval(wait)
            var after: Int64 = 0
            while Date() < deadline {
                let page = try client.call("duis.responses", params: ["requestID": .string(requestID), "after": .int(after)])
                for response in page["responses"]?.arrayValue ?? [] {
                    found.append(response)
                    after = max(after, response["seq"]?.intValue ?? after)
                    if !global.json { Terminal.write("async \(response["code"]?.stringValue ?? "?"): \(response["xml"]?.stringValue ?? "")\n") }
                }
                // A device response ends the exchange unless it says more is to come (future dated).
                if found.contains(where: { Self.element("FutureDatedAlertCode", in: $0["xml"]?.stringValue ?? "") != nil })
                    || (found.count >= 1 && !(Self.element("GBCSPayload", in: found.last?["xml"]?.stringValue ?? "").map(Self.isNullAnswer) ?? false)) { break }
                usleep(100_000)
            }
            return (reply, found)
        }
        let body = reply["body"]?.stringValue ?? ""
        if global.json {
            Terminal.write(JSONValue.object(["reply": reply, "responses": .array(responses)]).serialized() + "\n")
        }
        if reply["status"]?.intValue != 200 || Self.element("ResponseCode", in: body)?.hasPrefix("E") == true { throw ExitCode(ExitStatus.refused) }
    }

    /// A CS06 NULL answer (`05 00`): a future-dated activation, whose alert follows later.
    static func isNullAnswer(_ base64: String) -> Bool {
        guard let bytes = Data(base64Encoded: base64).map({ [UInt8]($0) }), bytes.count > 4 else { return false }
        return bytes[0] == 0xDF && bytes.suffix(67).prefix(3).elementsEqual([0x02, 0x05, 0x00])
    }

    static func service(for xml: String) -> String {
        switch element("CommandVariant", in: xml)?.trimmingCharacters(in: .whitespacesAndNewlines) {
        case "4": "serviceT"
        case "2", "6", "8": "serviceD"
        default: "serviceS"
        }
    }

    /// The text of the first element with this local name, whatever its prefix.
    static func element(_ name: String, in xml: String) -> String? {
        guard let open = xml.range(of: ":\(name)>") ?? xml.range(of: "<\(name)>"),
              let close = xml.range(of: "</", range: open.upperBound..<xml.endIndex) else { return nil }
        return String(xml[open.upperBound..<close.lowerBound])
    }
}

struct DUISResponses: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "responses",
        abstract: "List the asynchronous DUIS responses smetsd keeps; --follow prints new ones as they come.",
        discussion: """
            Each line: seq, the time it was kept, the response code, the RequestID and its delivery \
            (kept, pending, delivered, dropped); --xml adds the document. With --json one object a line.

            Examples:
              smetsctl duis responses
              smetsctl duis responses --follow --xml
              smetsctl duis responses --request 90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-00-05:1
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Keep printing new responses until interrupted.")
    var follow = false

    @Flag(help: "Print each response's XML document too.")
    var xml = false

    @Option(help: ArgumentHelp("Only the responses of this RequestID.", valueName: "request-id"))
    var request: String?

    func run() throws {
        try global.session(defaultTimeout: .seconds(30)) { client in
            var after: Int64 = 0
            while true {
                var params: [String: JSONValue] = ["after": .int(after), "limit": 1000]
                if let request { params["requestID"] = .string(request) }
                let page = try client.call("duis.responses", params: .object(params))
                for response in page["responses"]?.arrayValue ?? [] {
                    after = max(after, response["seq"]?.intValue ?? after)
                    if global.json {
                        Terminal.write(response.serialized() + "\n")
                    } else {
                        let line = [response["seq"], response["kept"], response["code"], response["requestID"], response["delivery"]]
                            .map { $0?.stringValue ?? $0.map { $0.serialized() } ?? "-" }.joined(separator: "  ")
                        Terminal.write(line + "\n" + (xml ? (response["xml"]?.stringValue ?? "") + "\n" : ""))
                    }
                }
                if !follow { return }
                usleep(250_000)
            }
        }
    }
}
