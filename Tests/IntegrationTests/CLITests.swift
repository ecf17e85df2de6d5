import Foundation
import SMETSClient
import SMETSRPC
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// smetsctl's asset, tenancy, supplier, HAN and raw-call commands against the real daemon.
@Suite(.serialized) struct CLITests {
    let ctl = DaemonHarness.binary("smetsctl")
    let esme1 = "00-DB-12-34-56-78-00-02", ppmid1 = "00-DB-12-34-56-78-00-05", ihd1 = "00-DB-12-34-56-78-00-06"
    /// DisplayMessage "Hello" (Messaging, server to client), from docs/control-api.md.
    let helloMessage = "19010000010000002000000000FFFF0548656C6C6F"
    let csvHeader = ["device_id", "device_type", "manufacturer", "manufacturer_id", "model", "model_id", "firmware_version", "device_status", "csp_region"]

    func smetsctl(_ daemon: DaemonHarness, _ arguments: [String], input: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        guard let input else { return try runCommand(ctl, ["--socket", daemon.controlPath] + arguments) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ctl)
        process.arguments = ["--socket", daemon.controlPath] + arguments
        let stdin = Pipe(), out = Pipe(), err = Pipe()
        process.standardInput = stdin
        process.standardOutput = out
        process.standardError = err
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    /// RFC 4180: records end in CRLF, quoted fields may hold commas, doubled quotes and line breaks.
    func parseCSV(_ text: String) throws -> [[String]] {
        var records: [[String]] = []
        var record: [String] = []
        var field = ""
        var scalars = Array(text.unicodeScalars)[...]
        var quoted = false
        while let scalar = scalars.popFirst() {
            if quoted {
                if scalar == "\"" {
                    if scalars.first == "\"" { field.unicodeScalars.append("\""); scalars.removeFirst() } else { quoted = false }
                } else {
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"":
                #expect(field.isEmpty, "a quote only opens a field")
                quoted = true
            case ",":
                record.append(field)
                field = ""
            case "\r":
                #expect(scalars.popFirst() == "\n", "CR only before LF")
                record.append(field)
                records.append(record)
                record = []
                field = ""
            case "\n":
                Issue.record("a bare LF ends a record; RFC 4180 wants CRLF")
            default:
                field.unicodeScalars.append(scalar)
            }
        }
        #expect(!quoted, "an unterminated quoted field")
        #expect(record.isEmpty && field.isEmpty, "the last record ends in CRLF")
        return records
    }

    // MARK: Assets

    @Test func assetsListCSVHasAHeaderAndOneRowPerAssetAcrossPages() throws {
        // A model name with a comma and quotes, so that quoting is exercised end to end.
        let lab = try DaemonHarness.copyOfLab()
        let modelFile = lab + "/models/brightview-ihd.json"
        let model = try String(contentsOfFile: modelFile, encoding: .utf8)
            .replacingOccurrences(of: "\"Brightview IHD 7\"", with: "\"Brightview \\\"Glow\\\", IHD 7\"")
        try model.write(toFile: modelFile, atomically: true, encoding: .utf8)
        let daemon = try DaemonHarness(lab: lab).start()
        defer { daemon.stop() }

        let result = try smetsctl(daemon, ["assets", "list", "--csv", "--limit", "5"])
        #expect(result.status == 0, "\(result.stderr)")
        let records = try parseCSV(result.stdout)
        #expect(records.first == csvHeader)
        let rows = Array(records.dropFirst())
        let devices = try daemon.call("devices.list", ["limit": 1000])["devices"]?.arrayValue ?? []
        #expect(rows.count == devices.count, "one row per asset, every page followed (5 a page)")
        #expect(rows.count == 15)
        #expect(rows.allSatisfy { $0.count == csvHeader.count })
        #expect(rows.map { $0[0] } == devices.compactMap { $0["id"]?.stringValue })
        let ppmid = try #require(rows.first { $0[0] == ppmid1 })
        #expect(ppmid == [ppmid1, "PPMID", "ACME Meters", "1234", "ACME DualMode PPMID", "0000A001", "01020300", "Commissioned", "North"])
        let ihd = try #require(rows.first { $0[0] == ihd1 })
        #expect(ihd[4] == "Brightview \"Glow\", IHD 7", "a quoted field survives")
        #expect(result.stdout.contains("\"Brightview \"\"Glow\"\", IHD 7\""))

        // Filters narrow the CSV too.
        let ppmids = try parseCSV(try smetsctl(daemon, ["assets", "list", "--csv", "--type", "PPMID"]).stdout).dropFirst()
        #expect(!ppmids.isEmpty && ppmids.allSatisfy { $0[1] == "PPMID" })
    }

    @Test func assetsListAsAdminCountsEveryDeviceAndTransferMovesOne() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let devices = try #require(try daemon.call("daemon.status")["devices"]?.intValue)

        let page = try smetsctl(daemon, ["assets", "list", "--json"])
        #expect(page.status == 0, "\(page.stderr)")
        #expect(try JSONValue.parse(page.stdout)["total"]?.intValue == devices)

        let every = try smetsctl(daemon, ["assets", "list", "--all", "--limit", "3", "--json"])
        #expect(every.status == 0)
        let all = try JSONValue.parse(every.stdout)
        #expect(Int64(all["assets"]?.arrayValue?.count ?? -1) == devices)
        #expect(all["total"]?.intValue == devices)
        #expect(all["nextCursor"]?.isNull == true)

        let table = try smetsctl(daemon, ["assets", "list", "--type", "PPMID"])
        #expect(table.status == 0)
        #expect(table.stdout.hasPrefix("ID "))
        #expect(table.stdout.contains(ppmid1))

        func owned(_ owner: String) throws -> [String] {
            let page = try JSONValue.parse(try smetsctl(daemon, ["assets", "list", "--owner", owner, "--all", "--json"]).stdout)
            return page["assets"]?.arrayValue?.compactMap { $0["deviceId"]?.stringValue } ?? []
        }
        let betaBefore = try owned("MAP-BETA")
        #expect(try owned("MAP-ALPHA").contains(ihd1))
        #expect(!betaBefore.contains(ihd1))
        let moved = try smetsctl(daemon, ["assets", "transfer", ihd1, "--owner", "MAP-BETA"])
        #expect(moved.status == 0, "\(moved.stderr)")
        #expect(moved.stdout == "\(ihd1) now belongs to MAP-BETA\n")
        #expect(try owned("MAP-BETA").sorted() == (betaBefore + [ihd1]).sorted())
        #expect(try !owned("MAP-ALPHA").contains(ihd1))

        let shown = try smetsctl(daemon, ["assets", "show", ppmid1])
        #expect(shown.status == 0)
        #expect(shown.stdout.contains("manufacturer id"))
        #expect(shown.stdout.contains("PPMID"))
        let missing = try smetsctl(daemon, ["assets", "show", "00-DB-12-34-56-78-99-99"])
        #expect(missing.status == 1)

        #expect(try smetsctl(daemon, ["assets", "list", "--csv", "--json"]).status == 2)
        #expect(try smetsctl(daemon, ["assets", "list", "--region", "Atlantis"]).status == 2)
        #expect(try smetsctl(daemon, ["assets", "list", "--firmware-version", "12"]).status == 2)
    }

    // MARK: Tenancy and supplier

    @Test func tenancyChangePrintsWhatWasClearedAndDevicesShowCountsZero() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        #expect(try smetsctl(daemon, ["han", "topup", ppmid1, "12345678901234500150"]).status == 0)
        let sent = try smetsctl(daemon, ["han", "send", "--from", esme1, "--to", ppmid1, "--cluster", "0703", "--zcl", helloMessage])
        #expect(sent.status == 0, "\(sent.stderr)")
        let before = try #require(try daemon.call("devices.get", ["id": .string(ppmid1)])["data"])
        #expect(before["topUps"]?.intValue == 1)
        #expect(before["messages"]?.intValue == 1)

        let change = try smetsctl(daemon, ["tenancy", "change", "P0001"])
        #expect(change.status == 0, "\(change.stderr)")
        #expect(change.stdout.contains("control 26368 (consumption, consumer, supplier, topups, debt)"))
        let row = try #require(change.stdout.split(separator: "\n").first { $0.hasPrefix(ppmid1) })
        let cells = row.split(separator: " ", omittingEmptySubsequences: true)
        #expect(cells.count == 7)
        #expect(cells[1] == "cleared")
        #expect(cells[4] == "1", "one supplier message")
        #expect(cells[5] == "1", "one top-up")

        let shown = try smetsctl(daemon, ["devices", "show", ppmid1, "--json"])
        #expect(shown.status == 0)
        let data = try #require(try JSONValue.parse(shown.stdout)["data"]?.objectValue)
        #expect(!data.isEmpty)
        for (key, count) in data { #expect(count.intValue == 0, "\(key) is cleared") }
    }

    @Test func tenancyChangeInTheFutureIsPendingAndOptionsAreChecked() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let pending = try smetsctl(daemon, ["tenancy", "change", "P0001", "P0002", "--clear", "supplier,topups", "--at", "2099-01-01T00:00:00Z"])
        #expect(pending.status == 0, "\(pending.stderr)")
        #expect(pending.stdout.contains("pending until 2099-01-01T00:00:00Z, control 9216 (supplier, topups)"))
        #expect(pending.stdout.contains("\(ppmid1)  pending"))
        let json = try smetsctl(daemon, ["tenancy", "change", "P0002", "--control", "0x0400", "--at", "2099-01-01T00:00:00Z", "--json"])
        let result = try JSONValue.parse(json.stdout)
        #expect(result["pending"]?.boolValue == true)
        #expect(result["control"]?.intValue == 1024)

        #expect(try smetsctl(daemon, ["tenancy", "change", "P0001", "--control", "1024", "--clear", "debt"]).status == 2)
        #expect(try smetsctl(daemon, ["tenancy", "change", "P0001", "--clear", "furniture"]).status == 2)
        #expect(try smetsctl(daemon, ["tenancy", "change", "P0001", "--at", "tomorrow"]).status == 2)
        #expect(try smetsctl(daemon, ["tenancy", "change"]).status == 2)
        let unknown = try smetsctl(daemon, ["tenancy", "change", "P9999"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("premises_not_found"))
    }

    @Test func supplierChangeNamesTheDisplaysItTold() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let change = try smetsctl(daemon, ["supplier", "change", "P0001", "--provider", "0000abcd", "--name", "New Energy"])
        #expect(change.status == 0, "\(change.stderr)")
        #expect(change.stdout.hasPrefix("P0001: supplier now 0000ABCD (New Energy); told "))
        #expect(change.stdout.contains(ppmid1))
        #expect(try smetsctl(daemon, ["supplier", "change", "P0001", "--provider", "XYZ"]).status == 2)
        #expect(try smetsctl(daemon, ["supplier", "change", "P0001", "--provider", "0000ABCD", "--name", "A Name Far Too Long"]).status == 2)
    }

    @Test func meterDebtSetsAndShowsTheDebtAndRefusesWhatItMust() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let meter = "00-DB-12-34-56-78-00-02"
        let set = try smetsctl(daemon, ["meter", "debt", meter, "--debt", "2000", "--per-day", "50", "--recovery-percent", "25"])
        #expect(set.status == 0, "\(set.stderr)")
        #expect(set.stdout.contains("DEBT") && set.stdout.contains("2000") && set.stdout.contains("25"), "\(set.stdout)")
        let json = try smetsctl(daemon, ["meter", "debt", meter, "--json"])
        #expect(json.stdout.contains("\"perDay\":50") || json.stdout.contains("\"perDay\" : 50"), "\(json.stdout)")
        #expect(try smetsctl(daemon, ["meter", "debt", meter, "--recovery-percent", "101"]).status == 2)
        #expect(try smetsctl(daemon, ["meter", "debt", ppmid1]).status == 1, "a PPMID holds no debt")
    }

    // MARK: HAN

    @Test func topUpIsAcceptedOnceThenRefusedAsADuplicateAndTheTraceShowsIt() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let code = "12345678901234500150"
        let first = try smetsctl(daemon, ["han", "topup", ppmid1, code])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.hasPrefix("accepted: value 150, credit remaining "))

        let again = try smetsctl(daemon, ["han", "topup", ppmid1, code])
        #expect(again.status == 1, "a refused top-up exits 1")
        #expect(again.stdout.hasPrefix("refused: duplicate (result 2)"))
        #expect(again.stderr.isEmpty)
        let json = try smetsctl(daemon, ["han", "topup", ppmid1, code, "--json"])
        #expect(json.status == 1)
        #expect(try JSONValue.parse(json.stdout)["result"]?.intValue == 2)
        let invalid = try smetsctl(daemon, ["han", "topup", ppmid1, "12"])
        #expect(invalid.status == 1)
        #expect(invalid.stdout.hasPrefix("refused: invalid (result 1)"))
        let notAPPMID = try smetsctl(daemon, ["han", "topup", esme1, code])
        #expect(notAPPMID.status == 1)
        #expect(notAPPMID.stderr.contains("invalid_state"))

        let trace = try smetsctl(daemon, ["han", "trace", ppmid1])
        #expect(trace.status == 0, "\(trace.stderr)")
        #expect(trace.stdout.hasPrefix("TIME "))
        let topUps = trace.stdout.split(separator: "\n").filter { $0.contains(" ConsumerTopUp ") }
        #expect(topUps.count >= 2)
        #expect(topUps.allSatisfy { $0.contains(" out ") && $0.contains(esme1) && $0.contains("0705 Prepayment") })
        #expect(trace.stdout.contains("ConsumerTopUpResponse"))
        let meter = try JSONValue.parse(try smetsctl(daemon, ["han", "trace", esme1, "--limit", "2", "--json"]).stdout)
        #expect(meter["frames"]?.arrayValue?.count == 2)
        #expect(try smetsctl(daemon, ["han", "trace", ppmid1, "--limit", "0"]).status == 2)
    }

    @Test func traceFollowPrintsNewFramesOfTheDevice() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let output = OutputCollector()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ctl)
        process.arguments = ["--socket", daemon.controlPath, "han", "trace", ppmid1, "--follow"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        out.fileHandleForReading.readabilityHandler = { handle in output.append(handle.availableData) }
        try process.run()
        defer {
            // SIGKILL: the child inherits the test runner's signal mask, in which SIGTERM is blocked.
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            out.fileHandleForReading.readabilityHandler = nil
        }
        // The header is printed once smetsctl has subscribed, so no frame after it is missed.
        #expect(output.wait { $0.hasPrefix("TIME ") })
        #expect(!output.text.contains("ConsumerTopUp"))
        _ = try daemon.call("han.topUp", ["device": .string(ppmid1), "code": "12345678901234500150"])
        #expect(output.wait { $0.contains("ConsumerTopUpResponse") }, "got: \(output.text)")
        let lines = output.text.split(separator: "\n")
        #expect(lines.filter { $0.contains(" ConsumerTopUp ") }.count == 1, "each frame once")
        #expect(lines.filter { $0.contains(" ConsumerTopUpResponse ") }.count == 1, "each frame once")
        #expect(lines.contains { $0.contains(" in ") && $0.contains("ConsumerTopUpResponse") && $0.contains(esme1) })
        // Frames of other devices are not shown.
        _ = try daemon.call("han.topUp", ["device": "00-DB-12-34-56-79-00-05", "code": "12345678901234500150"])
        #expect(!output.wait(seconds: 1) { $0.contains("00-DB-12-34-56-79-00-02") })
        #expect(process.isRunning, "it keeps following")
    }

    // MARK: call

    @Test func callPrintsTheRawResultAndRefusesBadParams() throws {
        let daemon = try DaemonHarness().start()
        defer { daemon.stop() }
        let compact = try smetsctl(daemon, ["call", "daemon.status", "--json"])
        #expect(compact.status == 0, "\(compact.stderr)")
        #expect(compact.stdout.split(separator: "\n").count == 1)
        #expect(try JSONValue.parse(compact.stdout)["devices"]?.intValue == 15)
        let pretty = try smetsctl(daemon, ["call", "daemon.status"])
        #expect(pretty.stdout.split(separator: "\n").count > 3)
        #expect(try JSONValue.parse(pretty.stdout)["state"]?.stringValue == "ready")

        let device = try smetsctl(daemon, ["--json", "call", "devices.get", "{\"id\":\"\(ppmid1)\"}"])
        #expect(try JSONValue.parse(device.stdout)["type"]?.stringValue == "PPMID")
        let piped = try smetsctl(daemon, ["call", "assets.get", "-", "--json"], input: "{\"id\":\"\(ppmid1)\"}\n")
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(try JSONValue.parse(piped.stdout)["deviceId"]?.stringValue == ppmid1)

        let invalid = try smetsctl(daemon, ["call", "devices.get", "{\"id\":"])
        #expect(invalid.status == 2, "invalid JSON params are a usage error")
        #expect(invalid.stderr.contains("not valid JSON"))
        #expect(try smetsctl(daemon, ["call", "devices.get", "42"]).status == 2)
        #expect(try smetsctl(daemon, ["call", "devices.get", "-"], input: "nope").status == 2)

        let unknown = try smetsctl(daemon, ["call", "no.such.method", "--json"])
        #expect(unknown.status == 1)
        #expect(try JSONValue.parse(unknown.stderr)["error"]?["code"]?.intValue == -32601)
        let refused = try smetsctl(daemon, ["call", "devices.get", "{\"id\":\"00-DB-12-34-56-78-99-99\"}"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("device_not_found"))
    }
}

/// Output of a running process, gathered as it comes.
private final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()

    func append(_ chunk: Data) { lock.withLock { data.append(chunk) } }

    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }

    /// Waits up to `seconds` for the output to satisfy `condition`.
    func wait(seconds: Double = 20, _ condition: (String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(text) { return true }
            usleep(20_000)
        }
        return condition(text)
    }
}
