#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystemd
import Logging

/// A `LogHandler` that sends each event to the systemd journal as one structured entry
/// (`sd_journal_sendv(3)`), so that `journalctl` can filter on its fields:
///
/// | field | value |
/// |---|---|
/// | `MESSAGE` | the message, as is (line breaks allowed) |
/// | `PRIORITY` | syslog priority of the level (see ``priority(for:)``) |
/// | `SYSLOG_IDENTIFIER` | the process's identifier (e.g. `smetsd`) |
/// | `LOGGER` | the logger's label (e.g. `smetsd.han`) |
/// | `CODE_FILE`, `CODE_LINE`, `CODE_FUNC` | where the log call is |
/// | one per metadata key | named by ``fieldName(for:)``: `device_id` → `DEVICE_ID` |
/// | `ERROR` | the event's error, unless metadata already gives `ERROR` |
///
/// Nested metadata is flattened first (``LogFormatting/flatten(_:)``: `peer.uid` → `PEER_UID`).
/// Should the journal be unreachable, the event is written to standard error as a text line
/// instead, so nothing is lost silently.
///
/// ```sh
/// journalctl -u smetsd EVENT=daemon.reloaded -o verbose
/// ```
public struct JournaldLogHandler: LogHandler {
    /// The label of the logger this handler serves (sent as `LOGGER=`).
    public let label: String
    /// Sent as `SYSLOG_IDENTIFIER=`.
    public let identifier: String
    /// Events below this level are dropped (by `Logger`, before they reach the handler).
    public var logLevel: Logger.Level
    /// Metadata attached to every event of this handler.
    public var metadata: Logger.Metadata = [:]
    /// Supplies contextual metadata (e.g. task-local) for every event.
    public var metadataProvider: Logger.MetadataProvider?

    /// Creates a handler.
    /// - Parameters:
    ///   - label: the logger's label.
    ///   - identifier: the syslog identifier; defaults to the executable's name.
    ///   - level: the initial ``logLevel``.
    ///   - metadataProvider: contextual metadata merged into every event.
    public init(
        label: String, identifier: String? = nil, level: Logger.Level = .info,
        metadataProvider: Logger.MetadataProvider? = nil
    ) {
        self.label = label
        self.identifier = identifier ?? SystemdLogging.executableName()
        self.logLevel = level
        self.metadataProvider = metadataProvider
    }

    /// Reads or writes one metadata key of this handler.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Sends `event` to the journal as one entry.
    public func log(event: LogEvent) {
        let record = LogRecord(event: event, label: label, metadata: metadata, provider: metadataProvider)
        if Self.send(Self.fields(for: record, identifier: identifier)) < 0 {
            TextLogHandler.writeAll(TextLogHandler.line(for: record, format: .text) + "\n", to: STDERR_FILENO)
        }
    }

    /// The journal fields for `record`, in the order they are sent.
    public static func fields(for record: LogRecord, identifier: String) -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = [
            ("MESSAGE", record.message),
            ("PRIORITY", String(priority(for: record.level))),
            ("SYSLOG_IDENTIFIER", identifier),
            ("LOGGER", record.label),
        ]
        if !record.file.isEmpty {
            fields.append(("CODE_FILE", record.file))
            fields.append(("CODE_LINE", String(record.line)))
        }
        if !record.function.isEmpty {
            fields.append(("CODE_FUNC", record.function))
        }
        var hasError = false
        for (key, value) in LogFormatting.flatten(record.metadata) {
            guard let name = fieldName(for: key) else { continue }
            if name == "ERROR" { hasError = true }
            fields.append((name, value))
        }
        if let error = record.error, !hasError {
            fields.append(("ERROR", error))
        }
        return fields
    }

    /// The fields this handler fills itself; a metadata key that maps to one of them is sent as
    /// `META_<name>` instead, so metadata can never forge the message, priority or origin.
    public static let reservedFieldNames: Set<String> = [
        "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "SYSLOG_FACILITY", "SYSLOG_PID",
        "SYSLOG_TIMESTAMP", "LOGGER", "CODE_FILE", "CODE_LINE", "CODE_FUNC",
    ]

    /// The longest field name journald accepts.
    public static let maximumFieldNameLength = 64

    /// A valid journal field name for a metadata key, or `nil` if the key has no letter or digit.
    ///
    /// ASCII letters are upper-cased, digits kept, and every run of other characters (`_`, `.`,
    /// `-`, spaces, non-ASCII) becomes one `_`; leading
    /// digits and underscores are dropped (a leading `_` marks fields only journald may set); a
    /// name in ``reservedFieldNames`` gets the prefix `META_`; the result is cut to 64 characters.
    /// So `device_id` → `DEVICE_ID`, `event` → `EVENT`, `peer.uid` → `PEER_UID`,
    /// `_secret` → `SECRET`, `2fa` → `FA`, `message` → `META_MESSAGE`.
    public static func fieldName(for key: String) -> String? {
        var name: [UInt8] = []
        name.reserveCapacity(key.utf8.count)
        for byte in key.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): name.append(byte - 32)
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): name.append(byte)
            default:
                // One underscore per run of other characters (a UTF-8 sequence is one run).
                if name.last != UInt8(ascii: "_") { name.append(UInt8(ascii: "_")) }
            }
        }
        let start = name.firstIndex { byte in
            byte != UInt8(ascii: "_") && !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        }
        guard let start else { return nil }
        var result = String(decoding: name[start...], as: UTF8.self)
        if reservedFieldNames.contains(result) { result = "META_" + result }
        if result.utf8.count > maximumFieldNameLength {
            result = String(result.prefix(maximumFieldNameLength))
        }
        return result
    }

    /// The syslog priority journald records for `level`: trace and debug 7 (debug), info 6,
    /// notice 5, warning 4, error 3, critical 2 (crit).
    public static func priority(for level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// Sends one entry; returns `sd_journal_sendv`'s result (0, or a negative errno).
    static func send(_ fields: [(name: String, value: String)]) -> Int32 {
        // All fields in one buffer, each "NAME=value" without a terminator; iovecs point into it.
        var buffer: [UInt8] = []
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(fields.count)
        for (name, value) in fields {
            let start = buffer.count
            buffer.append(contentsOf: name.utf8)
            buffer.append(UInt8(ascii: "="))
            buffer.append(contentsOf: value.utf8)
            ranges.append(start..<buffer.count)
        }
        return buffer.withUnsafeMutableBytes { raw -> Int32 in
            guard let base = raw.baseAddress else { return -EINVAL }
            let vectors = ranges.map { range in
                iovec(iov_base: base + range.lowerBound, iov_len: range.count)
            }
            return vectors.withUnsafeBufferPointer { iov in
                sd_journal_sendv(iov.baseAddress, Int32(iov.count))
            }
        }
    }
}
