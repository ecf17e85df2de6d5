#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import Testing
@testable import SystemdKit

struct TextLogHandlerTests {
    /// 2026-11-23T06:05:20.123456789Z
    static let time = timespec(tv_sec: 1_795_413_920, tv_nsec: 123_456_789)

    @Test func timestampIsUTCWithMilliseconds() {
        #expect(LogFormatting.timestamp(Self.time) == "2026-11-23T06:05:20.123Z")
        #expect(LogFormatting.timestamp(timespec(tv_sec: 0, tv_nsec: 5_000_000)) == "1970-01-01T00:00:00.005Z")
        #expect(LogFormatting.timestamp(timespec(tv_sec: 951_782_400, tv_nsec: 0)) == "2000-02-29T00:00:00.000Z")
    }

    @Test func textLineMatchesTheDocumentedShape() {
        let record = LogRecord(
            level: .info, message: "device joined", label: "smetsd.han",
            metadata: ["device_id": "00-0D-6F", "note": "quoted value", "event": "han.join"],
            time: Self.time
        )
        #expect(TextLogHandler.line(for: record, format: .text)
            == #"2026-11-23T06:05:20.123Z info  [smetsd.han] device joined device_id=00-0D-6F event=han.join note="quoted value""#)
    }

    @Test func levelsArePaddedToFiveColumns() {
        #expect(TextLogHandler.levelColumn(.info) == "info ")
        #expect(TextLogHandler.levelColumn(.error) == "error")
        #expect(TextLogHandler.levelColumn(.warning) == "warning")
    }

    @Test func oneEventIsAlwaysOneLine() {
        let record = LogRecord(
            level: .warning, message: "first\nsecond\r\nthird\tend", label: "l\nx",
            metadata: ["multi": "a\nb", "quote": #"say "hi"\"#, "bell": "\u{7}"],
            error: "broken\npipe", time: Self.time
        )
        let line = TextLogHandler.line(for: record, format: .text)
        #expect(!line.contains("\n") && !line.contains("\r"))
        #expect(line == #"2026-11-23T06:05:20.123Z warning [l\nx] first\nsecond\r\nthird\tend bell="\u{07}" multi="a\nb" quote="say \"hi\"\\" error="broken\npipe""#)
        let json = TextLogHandler.line(for: record, format: .json)
        #expect(!json.contains("\n") && !json.contains("\r"))
    }

    @Test func logfmtQuotesOnlyWhenNeeded() {
        #expect(LogFormatting.logfmtValue("plain") == "plain")
        #expect(LogFormatting.logfmtValue("ünïcode") == "ünïcode")
        #expect(LogFormatting.logfmtValue("") == #""""#)
        #expect(LogFormatting.logfmtValue("a b") == #""a b""#)
        #expect(LogFormatting.logfmtValue("k=v") == #""k=v""#)
        #expect(LogFormatting.logfmtValue(#"back\slash"#) == #""back\\slash""#)
        #expect(LogFormatting.logfmtKey("bad key=\"x\"") == "bad_key__x_")
    }

    @Test func nestedMetadataIsFlattened() {
        let metadata: Logger.Metadata = [
            "peer": ["uid": "1000", "role": "installer"],
            "ids": ["a", "b"],
            "empty": [:],
            "none": [],
            "n": .stringConvertible(42),
        ]
        let flat = LogFormatting.flatten(metadata).map { "\($0.key)=\($0.value)" }
        #expect(flat == ["empty={}", "ids.0=a", "ids.1=b", "n=42", "none=[]", "peer.role=installer", "peer.uid=1000"])
    }

    @Test func jsonLineKeepsStructure() {
        let record = LogRecord(
            level: .error, message: "say \"hi\"", label: "smetsd",
            metadata: ["peer": ["uid": "0"], "ids": ["a", "b"], "level": "forged", "event": "x"],
            error: "EPIPE", time: Self.time
        )
        #expect(TextLogHandler.line(for: record, format: .json)
            == #"{"time":"2026-11-23T06:05:20.123Z","level":"error","label":"smetsd","message":"say \"hi\"","event":"x","ids":["a","b"],"meta.level":"forged","peer":{"uid":"0"},"error":"EPIPE"}"#)
    }

    @Test func jsonEscapesControlCharacters() {
        #expect(LogFormatting.jsonString("a\u{1}\u{2028}\\") == #""a\u0001\u2028\\""#)
    }

    @Test func handlerWritesOneLinePerEventToItsDescriptor() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        let writeEnd = ends[1]
        var logger = Logger(label: "test.label") { label in
            TextLogHandler(label: label, format: .text, level: .info, fileDescriptor: writeEnd)
        }
        logger[metadataKey: "device_id"] = "d1"
        logger.debug("dropped below level")
        logger.info("hello\nworld", metadata: ["event": "test.hello"])

        let output = try TestSockets.readAvailable(ends[0])
        #expect(output.hasSuffix(" info  [test.label] hello\\nworld device_id=d1 event=test.hello\n"))
        #expect(output.filter { $0 == "\n" }.count == 1)
        #expect(output.count > 24 && output.dropFirst(23).hasPrefix("Z"))
    }

    @Test func metadataProviderAndEventMetadataMerge() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        let writeEnd = ends[1]
        let provider = Logger.MetadataProvider { ["request": "r1", "device_id": "from-provider"] }
        var logger = Logger(label: "m") { label in
            TextLogHandler(label: label, format: .json, metadataProvider: provider, fileDescriptor: writeEnd)
        }
        logger[metadataKey: "device_id"] = "from-handler"
        logger[metadataKey: "site"] = "lab"
        logger.notice("merged", metadata: ["request": "r2"])

        let output = try TestSockets.readAvailable(ends[0])
        #expect(output.hasSuffix(#""level":"notice","label":"m","message":"merged","device_id":"from-provider","request":"r2","site":"lab"}"# + "\n"))
    }
}
