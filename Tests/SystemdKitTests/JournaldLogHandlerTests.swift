#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import Testing
@testable import SystemdKit

struct JournaldLogHandlerTests {
    @Test(arguments: [
        ("device_id", "DEVICE_ID"),
        ("event", "EVENT"),
        ("EVENT", "EVENT"),
        ("peer.uid", "PEER_UID"),
        ("han-link", "HAN_LINK"),
        ("a  b", "A_B"),
        ("_secret", "SECRET"),
        ("__x", "X"),
        ("2fa", "FA"),
        ("9_lives", "LIVES"),
        ("gbcs.use_case", "GBCS_USE_CASE"),
        ("größe", "GR_E"),
        ("message", "META_MESSAGE"),
        ("priority", "META_PRIORITY"),
        ("code_file", "META_CODE_FILE"),
        ("syslog_identifier", "META_SYSLOG_IDENTIFIER"),
        ("message_id", "MESSAGE_ID"),
    ])
    func fieldNames(key: String, expected: String) {
        #expect(JournaldLogHandler.fieldName(for: key) == expected)
    }

    @Test func keysWithoutLettersOrDigitsAfterTheLeadHaveNoField() {
        #expect(JournaldLogHandler.fieldName(for: "") == nil)
        #expect(JournaldLogHandler.fieldName(for: "___") == nil)
        #expect(JournaldLogHandler.fieldName(for: "123") == nil)
        #expect(JournaldLogHandler.fieldName(for: "-.-") == nil)
    }

    @Test func fieldNamesAreCutTo64Characters() throws {
        let name = try #require(JournaldLogHandler.fieldName(for: String(repeating: "ab", count: 50)))
        #expect(name.count == 64)
        #expect(name == String(repeating: "AB", count: 32))
    }

    @Test func everyFieldNameIsValid() {
        let keys = ["device_id", "_x", "1", "ü", "a.b.c", "-", String(repeating: "z", count: 80), "message", "Ok"]
        for key in keys {
            guard let name = JournaldLogHandler.fieldName(for: key) else { continue }
            #expect(!name.isEmpty && name.count <= 64)
            #expect(name.utf8.allSatisfy { ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 95 })
            #expect(name.utf8.first.map { $0 >= 65 && $0 <= 90 } == true)
        }
    }

    @Test func prioritiesFollowSyslog() {
        #expect(JournaldLogHandler.priority(for: .trace) == 7)
        #expect(JournaldLogHandler.priority(for: .debug) == 7)
        #expect(JournaldLogHandler.priority(for: .info) == 6)
        #expect(JournaldLogHandler.priority(for: .notice) == 5)
        #expect(JournaldLogHandler.priority(for: .warning) == 4)
        #expect(JournaldLogHandler.priority(for: .error) == 3)
        #expect(JournaldLogHandler.priority(for: .critical) == 2)
    }

    @Test func entryHasMessagePriorityOriginAndMetadata() {
        let record = LogRecord(
            level: .notice, message: "lab reloaded\n3 devices", label: "smetsd.daemon",
            metadata: [
                "event": "daemon.reloaded",
                "device_id": "00-0D-6F-00-00-00-00-01",
                "peer": ["uid": "1000", "role": "engineer"],
                "message": "forged",
            ],
            file: "SMETSDaemon/Daemon.swift", function: "reload()", line: 42
        )
        let fields = JournaldLogHandler.fields(for: record, identifier: "smetsd")
        #expect(fields.map(\.name) == [
            "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "LOGGER", "CODE_FILE", "CODE_LINE", "CODE_FUNC",
            "DEVICE_ID", "EVENT", "META_MESSAGE", "PEER_ROLE", "PEER_UID",
        ])
        #expect(fields.map(\.value) == [
            "lab reloaded\n3 devices", "5", "smetsd", "smetsd.daemon", "SMETSDaemon/Daemon.swift", "42", "reload()",
            "00-0D-6F-00-00-00-00-01", "daemon.reloaded", "forged", "engineer", "1000",
        ])
    }

    @Test func errorFieldComesFromEventUnlessMetadataHasOne() {
        var record = LogRecord(level: .error, message: "m", label: "l", error: "EPIPE")
        #expect(JournaldLogHandler.fields(for: record, identifier: "x").last.map { "\($0.name)=\($0.value)" } == "ERROR=EPIPE")
        record.metadata = ["error": "from metadata"]
        let errors = JournaldLogHandler.fields(for: record, identifier: "x").filter { $0.name == "ERROR" }
        #expect(errors.map(\.value) == ["from metadata"])
    }

    @Test func handlerKeepsMetadataAndLevelAsValues() {
        var handler = JournaldLogHandler(label: "l", identifier: "id", level: .debug)
        handler[metadataKey: "device_id"] = "d1"
        var copy = handler
        copy[metadataKey: "device_id"] = "d2"
        copy.logLevel = .error
        #expect(handler[metadataKey: "device_id"] == "d1")
        #expect(handler.logLevel == .debug)
        #expect(copy.metadata["device_id"] == "d2")
        #expect(handler.identifier == "id")
    }
}
