import Foundation
import SMETSCore
@testable import SMETSConfig
@testable import SMETSDaemon
import Testing

/// `smetsd.json`: unknown keys, what a reload applies, and the docs saying the same.
struct SettingsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// A devices folder holding only `smetsd.json`, loaded; the settings file's problems.
    static func settingsProblems(_ json: String) throws -> [String] {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("smetsd-settings-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try json.write(to: folder.appendingPathComponent("smetsd.json"), atomically: true, encoding: .utf8)
        do {
            _ = try LabLoader.load(directory: folder.path)
            return []
        } catch {
            return error.problems.filter { $0.contains("smetsd.json") }
        }
    }

    static func decode(_ json: String) throws -> Settings { try JSONDecoder().decode(Settings.self, from: Data(json.utf8)) }

    @Test func anUnknownKeyIsAnErrorNamingItAndTheNearestKnownKey() throws {
        let problems = try Self.settingsProblems(#"{"maxLinkPerDevice": 4}"#)
        #expect(problems.count == 1)
        #expect(problems.first?.hasSuffix("smetsd.json: maxLinkPerDevice: unknown key; did you mean 'maxLinksPerDevice'?") == true, "\(problems)")
    }

    @Test func everyUnknownKeyIsNamedAndOneWithNoNearKeyGetsTheList() throws {
        let problems = try Self.settingsProblems(#"{"HISTORYDAYS": 30, "colour": "blue", "maxHANFrameBytes": 1024}"#)
        let text = try #require(problems.first)
        #expect(text.contains("HISTORYDAYS: unknown key; did you mean 'historyDays'?"), "sorted: upper case first; case is a typo too")
        #expect(text.contains("also unknown: 'colour', it is none of maxHANFrameBytes,"))
        #expect(text.contains("see docs/settings.md"))
    }

    @Test func nearKeysAreTyposCaseAndShortenedNames() {
        #expect(Settings.closestKey(to: "maxLinkPerDevice") == "maxLinksPerDevice")
        #expect(Settings.closestKey(to: "maxlinksperdevice") == "maxLinksPerDevice")
        #expect(Settings.closestKey(to: "helloTimeout") == "helloTimeoutSeconds")
        #expect(Settings.closestKey(to: "maxTracedDevicesCount") == "maxTracedDevices")
        #expect(Settings.closestKey(to: "maxConnections") == "maxHANConnections")
        #expect(Settings.closestKey(to: "socketModes") == "socketMode")
        #expect(Settings.closestKey(to: "colour") == nil)
        #expect(Settings.closestKey(to: "") == nil)
        #expect(Settings.editDistance(Array("kitten".utf8), Array("sitting".utf8), atMost: 3) == 3)
        #expect(Settings.editDistance(Array("kitten".utf8), Array("sitting".utf8), atMost: 2) == nil)
        #expect(Settings.editDistance(Array("".utf8), Array("ab".utf8), atMost: 2) == 2)
        #expect(Settings.editDistance(Array("abcdefgh".utf8), Array("a".utf8), atMost: 6) == nil, "lengths 7 apart")
    }

    @Test func aFileOfManyStrayKeysGetsAdviceForTheFirstFewAndACount() throws {
        let keys = (0..<50).map { #""stray\#($0)": 1"# }.joined(separator: ", ")
        let problems = try Self.settingsProblems("{\(keys)}")
        let text = try #require(problems.first)
        #expect(text.components(separatedBy: "also unknown:").count - 1 == Settings.unknownKeysAdvised - 1, "\(text)")
        #expect(text.hasSuffix("and \(50 - Settings.unknownKeysAdvised) more unknown keys"), "\(text)")
    }

    @Test func theBoundedDistanceAgreesWithTheFullOneWithinItsBound() {
        // The full dynamic programme, written out here without the bound, as the reference.
        func full(_ a: [UInt8], _ b: [UInt8]) -> Int {
            var row = Array(0...b.count)
            for (i, x) in a.enumerated() {
                var next = [i + 1]
                for (j, y) in b.enumerated() { next.append(min(row[j + 1] + 1, next[j] + 1, row[j] + (x == y ? 0 : 1))) }
                row = next
            }
            return row[b.count]
        }
        // Every word of up to four letters over {a, b, c} (121) against every other: a deterministic sweep.
        var words: [[UInt8]] = [[]]
        var frontier: [[UInt8]] = [[]]
        for _ in 1...4 {
            frontier = frontier.flatMap { word in [UInt8(97), 98, 99].map { word + [$0] } }
            words += frontier
        }
        for a in words {
            for b in words {
                let expected = full(a, b)
                for limit in [0, 1, 2, 4] where Settings.editDistance(a, b, atMost: limit) != (expected <= limit ? expected : nil) {
                    Issue.record("\(a) \(b) at most \(limit): expected \(expected)")
                }
            }
        }
    }

    @Test func knownKeysStillDecodeAndWrongTypesStillNameTheKey() throws {
        let settings = try Self.decode(#"{"maxLinksPerDevice": 4, "socketGroup": "lab", "socketMode": "0666"}"#)
        #expect(settings.maxLinksPerDevice == 4)
        #expect(settings.socketGroup == "lab")
        #expect(settings.maxHANFrameBytes == Settings().maxHANFrameBytes, "an absent key keeps its default")
        let problems = try Self.settingsProblems(#"{"maxLinksPerDevice": "four"}"#)
        #expect(problems.first?.contains("smetsd.json: maxLinksPerDevice: expected a number") == true, "\(problems)")
    }

    @Test func theReloadPlanSplitsChangedKeysIntoAppliedAndNeedingARestart() {
        let old = Settings()
        let unchanged = Settings.reloadPlan(from: old, to: old)
        #expect(unchanged.applied.isEmpty && unchanged.needsRestart.isEmpty)
        var new = old
        new.maxLinksPerDevice = 2
        new.maxControlLineBytes = 4096
        new.socketMode = "0666"
        new.maxPerDeviceSockets = 3
        new.socketGroup = "lab"
        new.helloTimeoutSeconds = 0.5
        let plan = Settings.reloadPlan(from: old, to: new)
        #expect(plan.applied == ["maxLinksPerDevice", "helloTimeoutSeconds", "maxControlLineBytes"])
        #expect(plan.needsRestart == ["maxPerDeviceSockets", "socketMode", "socketGroup"])
        #expect(Settings.reloadPlan(from: new, to: old).needsRestart == plan.needsRestart, "going back is a change too")
    }

    @Test func aReloadKeepsRestartOnlyValuesSoTheNextReloadStillReportsThem() {
        var file = Settings()
        file.socketMode = "0666"
        file.maxTracedDevices = 10
        let live = LiveSettings(Settings())
        let first = live.reload(file)
        #expect(first.applied == ["maxTracedDevices"])
        #expect(first.needsRestart == ["socketMode"])
        #expect(live.current.maxTracedDevices == 10)
        #expect(live.current.socketMode == "0660", "the sockets still have the mode they were bound with")
        let second = live.reload(file)
        #expect(second.applied.isEmpty)
        #expect(second.needsRestart == ["socketMode"], "still not applied, still reported")
        #expect(live.reload(Settings()).needsRestart.isEmpty, "the file agrees with the sockets again")
    }

    @Test func everyKeyIsLiveUnlessItIsFixedWhenTheSocketsAreBound() {
        let restart = Settings.CodingKeys.allCases.filter { Settings.reloadEffect(of: $0) == .restart }.map(\.rawValue)
        #expect(restart == ["maxPerDeviceSockets", "socketMode", "socketGroup", "storageProbeSeconds", "duis"])
    }

    @Test func tracesTakeALowerLimitAtTheNextNewDevice() {
        let traces = FrameTraces(maxDevices: 4)
        let frame = TracedFrame(time: Timestamp(unixMillis: 0), direction: .incoming, peer: EUI64(1), cluster: 0, zcl: [])
        for device in 1...4 { traces.record(EUI64(UInt64(device)), frame) }
        traces.setMaxDevices(2)
        #expect(traces.maxDevices == 2)
        traces.record(EUI64(5), frame)
        #expect((1...3).allSatisfy { traces.frames(EUI64(UInt64($0))).isEmpty }, "the three oldest rings go")
        #expect(traces.frames(EUI64(4)).count == 1)
        #expect(traces.frames(EUI64(5)).count == 1)
    }

    @Test func theSettingsPageDocumentsEveryKeyAndWhatSIGHUPDoesWithIt() throws {
        let page = try String(contentsOfFile: Self.root + "/docs/settings.md", encoding: .utf8)
        var documented: [String: String] = [:]
        for line in page.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            documented[cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`"))] = cells.last
        }
        #expect(Set(documented.keys) == Set(Settings.knownKeys))
        for key in Settings.CodingKeys.allCases {
            let says = documented[key.rawValue] ?? ""
            switch Settings.reloadEffect(of: key) {
            case .restart: #expect(says == "needs a restart", "\(key.rawValue): \(says)")
            case .live: #expect(says.hasPrefix("applied"), "\(key.rawValue): \(says)")
            }
        }
    }

    @Test func everySettingsFileTheProjectShipsOrWritesHasOnlyKnownKeys() throws {
        var samples: [(String, String)] = []
        let shipped = Self.root + "/devices/smetsd.json"
        if let text = try? String(contentsOfFile: shipped, encoding: .utf8) { samples.append((shipped, text)) }
        // The docs' examples, and the objects tests write to smetsd.json.
        let page = try String(contentsOfFile: Self.root + "/docs/settings.md", encoding: .utf8)
        for block in page.components(separatedBy: "```json\n").dropFirst() {
            samples.append(("docs/settings.md", String(block.prefix { $0 != "`" })))
        }
        for file in ["Tests/IntegrationTests/LifecycleTests.swift", "Tests/IntegrationTests/ReloadTests.swift"] {
            let text = try String(contentsOfFile: Self.root + "/" + file, encoding: .utf8)
            for line in text.split(separator: "\n") where line.contains("smetsd.json") || line.contains("writeSettings(") || line.contains("copyOfLab(settings:") {
                if let start = line.range(of: "#\"{"), let end = line.range(of: "}\"#", range: start.upperBound..<line.endIndex) {
                    samples.append((file, String(line[line.index(before: start.upperBound)..<line.index(after: end.lowerBound)])))
                }
            }
        }
        for file in ["Tests/interop/test_access.py", "Tests/interop/test_han_zigpy.py"] {
            let text = try String(contentsOfFile: Self.root + "/" + file, encoding: .utf8)
            for line in text.split(separator: "\n") {
                for marker in ["settings={", "smetsd.json\").write_text(json.dumps({"] {
                    guard let start = line.range(of: marker), let end = line.range(of: "}", range: start.upperBound..<line.endIndex) else { continue }
                    samples.append((file, String(line[line.index(before: start.upperBound)..<end.upperBound])))
                }
            }
        }
        #expect(samples.count >= 8)
        for (file, json) in samples {
            #expect(throws: Never.self, "\(file): \(json)") { _ = try Self.decode(json) }
        }
    }
}
