#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

/// One log event with everything a handler writes out: the event itself, the handler's label,
/// the merged metadata and the wall-clock time it was emitted.
///
/// Both ``TextLogHandler`` and ``JournaldLogHandler`` build one per event and hand it to their
/// pure formatters (``TextLogHandler/line(for:format:)``, ``JournaldLogHandler/fields(for:identifier:)``),
/// which is what the tests exercise.
public struct LogRecord: Sendable {
    /// The event's severity.
    public var level: Logger.Level
    /// The rendered message.
    public var message: String
    /// The label of the `Logger` that emitted the event.
    public var label: String
    /// The handler's metadata, then the metadata provider's, then the event's: a later key wins.
    public var metadata: Logger.Metadata
    /// The error attached to the event, rendered with `String(describing:)`, if any.
    public var error: String?
    /// The source file (`#fileID`-style path) of the log call.
    public var file: String
    /// The function of the log call.
    public var function: String
    /// The line of the log call.
    public var line: UInt
    /// When the event was emitted, on `CLOCK_REALTIME`.
    public var time: timespec

    /// Creates a record from its parts.
    public init(
        level: Logger.Level, message: String, label: String, metadata: Logger.Metadata = [:],
        error: String? = nil, file: String = "", function: String = "", line: UInt = 0,
        time: timespec = LogRecord.now()
    ) {
        self.level = level
        self.message = message
        self.label = label
        self.metadata = metadata
        self.error = error
        self.file = file
        self.function = function
        self.line = line
        self.time = time
    }

    /// Creates the record for `event` as emitted through a handler with `label`, `metadata` and
    /// `provider`, stamped now.
    public init(
        event: LogEvent, label: String, metadata: Logger.Metadata, provider: Logger.MetadataProvider?
    ) {
        var merged = metadata
        if let provided = provider?.get(), !provided.isEmpty {
            merged.merge(provided) { _, new in new }
        }
        if let own = event.metadata, !own.isEmpty {
            merged.merge(own) { _, new in new }
        }
        self.init(
            level: event.level, message: event.message.description, label: label, metadata: merged,
            error: event.error.map { String(describing: $0) },
            file: event.file, function: event.function, line: event.line
        )
    }

    /// The current wall-clock time.
    public static func now() -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return now
    }
}

/// Pure helpers shared by the log handlers: timestamps, metadata flattening, escaping.
public enum LogFormatting {
    /// The UTC time `time` as RFC 3339 with milliseconds, e.g. `2026-11-23T06:05:20.123Z`.
    public static func timestamp(_ time: timespec) -> String {
        var seconds = time_t(time.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let millis = Int(time.tv_nsec) / 1_000_000
        return pad(Int(parts.tm_year) + 1900, 4) + "-" + pad(Int(parts.tm_mon) + 1, 2) + "-"
            + pad(Int(parts.tm_mday), 2) + "T" + pad(Int(parts.tm_hour), 2) + ":"
            + pad(Int(parts.tm_min), 2) + ":" + pad(Int(parts.tm_sec), 2) + "."
            + pad(millis, 3) + "Z"
    }

    /// The metadata as flat `(key, value)` pairs sorted by key: a nested dictionary's entries
    /// become `outer.inner`, an array's elements `outer.0`, `outer.1`, ...; an empty dictionary
    /// or array is kept as the value `{}` or `[]`.
    public static func flatten(_ metadata: Logger.Metadata) -> [(key: String, value: String)] {
        var out: [(key: String, value: String)] = []
        for key in metadata.keys.sorted() {
            flatten(metadata[key]!, key: key, into: &out)
        }
        return out
    }

    private static func flatten(
        _ value: Logger.MetadataValue, key: String, into out: inout [(key: String, value: String)]
    ) {
        switch value {
        case .string(let string):
            out.append((key, string))
        case .stringConvertible(let convertible):
            out.append((key, convertible.description))
        case .dictionary(let dictionary):
            if dictionary.isEmpty { out.append((key, "{}")) }
            for inner in dictionary.keys.sorted() {
                flatten(dictionary[inner]!, key: key + "." + inner, into: &out)
            }
        case .array(let array):
            if array.isEmpty { out.append((key, "[]")) }
            for (index, element) in array.enumerated() {
                flatten(element, key: key + "." + String(index), into: &out)
            }
        }
    }

    /// `text` with line breaks, tabs and other control characters escaped (`\n`, `\r`, `\t`,
    /// `\u{1B}`), so that it can never split one event over two lines.
    public static func escapeControlCharacters(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            out += escaped(scalar) ?? String(scalar)
        }
        return out
    }

    /// A logfmt value: as is when it is non-empty and holds no space, `=`, `"`, `\` or control
    /// character; otherwise in double quotes with `\` and `"` backslash-escaped and control
    /// characters escaped as by ``escapeControlCharacters(_:)``.
    public static func logfmtValue(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.unicodeScalars.contains { scalar in
            scalar == " " || scalar == "=" || scalar == "\"" || scalar == "\\" || isControl(scalar)
                || scalar.properties.isWhitespace
        }
        guard needsQuotes else { return value }
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            default: out += escaped(scalar) ?? String(scalar)
            }
        }
        return out + "\""
    }

    /// A logfmt key: `key` with spaces, `=`, `"` and control characters replaced by `_`.
    public static func logfmtKey(_ key: String) -> String {
        if key.isEmpty { return "_" }
        var out = ""
        for scalar in key.unicodeScalars {
            if scalar == "=" || scalar == "\"" || isControl(scalar) || scalar.properties.isWhitespace {
                out += "_"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// `text` as a JSON string literal, quotes included.
    public static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value)
                    || scalar.value == 0x2028 || scalar.value == 0x2029
                {
                    out += "\\u" + hex(scalar.value, width: 4)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// A metadata value as JSON: strings as strings, dictionaries as objects (keys sorted),
    /// arrays as arrays.
    public static func json(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let string):
            return jsonString(string)
        case .stringConvertible(let convertible):
            return jsonString(convertible.description)
        case .dictionary(let dictionary):
            let members = dictionary.keys.sorted().map { jsonString($0) + ":" + json(dictionary[$0]!) }
            return "{" + members.joined(separator: ",") + "}"
        case .array(let array):
            return "[" + array.map(json).joined(separator: ",") + "]"
        }
    }

    // MARK: - Internals

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value)
            || scalar.value == 0x2028 || scalar.value == 0x2029
    }

    static func escaped(_ scalar: Unicode.Scalar) -> String? {
        switch scalar {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        default:
            return isControl(scalar) ? "\\u{" + hex(scalar.value, width: 2) + "}" : nil
        }
    }

    static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
