#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

/// A `LogHandler` that writes exactly one line per event to a file descriptor (standard error
/// unless told otherwise), for terminals, containers and `--foreground` runs.
///
/// In the `.text` format a line reads
/// `2026-11-23T06:05:20.123Z info  [smetsd.han] frame accepted device_id=00-0D-6F event=han.frame`:
/// UTC time with milliseconds, the level padded to five columns, the logger's label, the message
/// with control characters escaped, then the flattened metadata as logfmt `key=value` pairs
/// sorted by key (see ``LogFormatting/flatten(_:)`` and ``LogFormatting/logfmtValue(_:)``).
///
/// In the `.json` format a line is one JSON object (JSON Lines): `time`, `level`, `label`,
/// `message`, then each metadata key (nested metadata as nested objects and arrays), then
/// `error` if the event carried one. A metadata key that would clash with one of those names is
/// written as `meta.<key>`.
///
/// Each line goes out in a single `write(2)`, so lines from concurrent loggers do not interleave.
public struct TextLogHandler: LogHandler {
    /// The line format.
    public enum Format: String, Sendable, CaseIterable {
        /// Human-readable, logfmt-style lines.
        case text
        /// One JSON object per line.
        case json
    }

    /// The label of the logger this handler serves.
    public let label: String
    /// The line format.
    public var format: Format
    /// Events below this level are dropped (by `Logger`, before they reach the handler).
    public var logLevel: Logger.Level
    /// Metadata attached to every event of this handler.
    public var metadata: Logger.Metadata = [:]
    /// Supplies contextual metadata (e.g. task-local) for every event.
    public var metadataProvider: Logger.MetadataProvider?
    /// Where lines are written.
    public let fileDescriptor: Int32

    /// Creates a handler.
    /// - Parameters:
    ///   - label: the logger's label, shown in brackets.
    ///   - format: `.text` (default) or `.json`.
    ///   - level: the initial ``logLevel``.
    ///   - metadataProvider: contextual metadata merged into every event.
    ///   - fileDescriptor: where to write; standard error by default. The handler never closes it.
    public init(
        label: String, format: Format = .text, level: Logger.Level = .info,
        metadataProvider: Logger.MetadataProvider? = nil, fileDescriptor: Int32 = STDERR_FILENO
    ) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.metadataProvider = metadataProvider
        self.fileDescriptor = fileDescriptor
    }

    /// Reads or writes one metadata key of this handler.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Formats `event` and writes it as one line.
    public func log(event: LogEvent) {
        let record = LogRecord(event: event, label: label, metadata: metadata, provider: metadataProvider)
        Self.writeAll(Self.line(for: record, format: format) + "\n", to: fileDescriptor)
    }

    /// The line for `record` in `format`, without the trailing newline. Never contains a newline.
    public static func line(for record: LogRecord, format: Format) -> String {
        switch format {
        case .text: return textLine(for: record)
        case .json: return jsonLine(for: record)
        }
    }

    static func textLine(for record: LogRecord) -> String {
        var line = LogFormatting.timestamp(record.time) + " " + levelColumn(record.level)
        line += " [" + LogFormatting.escapeControlCharacters(record.label) + "] "
        line += LogFormatting.escapeControlCharacters(record.message)
        var hasError = false
        for (key, value) in LogFormatting.flatten(record.metadata) {
            if key == "error" { hasError = true }
            line += " " + LogFormatting.logfmtKey(key) + "=" + LogFormatting.logfmtValue(value)
        }
        if let error = record.error, !hasError {
            line += " error=" + LogFormatting.logfmtValue(error)
        }
        return line
    }

    static let jsonReserved: Set<String> = ["time", "level", "label", "message"]

    static func jsonLine(for record: LogRecord) -> String {
        var members = [
            "\"time\":" + LogFormatting.jsonString(LogFormatting.timestamp(record.time)),
            "\"level\":" + LogFormatting.jsonString(record.level.rawValue),
            "\"label\":" + LogFormatting.jsonString(record.label),
            "\"message\":" + LogFormatting.jsonString(record.message),
        ]
        for key in record.metadata.keys.sorted() {
            let name = jsonReserved.contains(key) ? "meta." + key : key
            members.append(LogFormatting.jsonString(name) + ":" + LogFormatting.json(record.metadata[key]!))
        }
        if let error = record.error, record.metadata["error"] == nil {
            members.append("\"error\":" + LogFormatting.jsonString(error))
        }
        return "{" + members.joined(separator: ",") + "}"
    }

    /// The level, left-aligned in five columns (`info `, `debug`, `warning`).
    static func levelColumn(_ level: Logger.Level) -> String {
        let name = level.rawValue
        return name.count >= 5 ? name : name + String(repeating: " ", count: 5 - name.count)
    }

    /// Writes all of `text`, retrying on `EINTR` and short writes; gives up silently on error
    /// (there is nowhere left to report a failure to log).
    static func writeAll(_ text: String, to fd: Int32) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }
}
