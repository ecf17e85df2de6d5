/// Bounds on what ``JSONValue/parse(_:limits:)`` accepts.
public struct JSONLimits: Sendable, Hashable {
    /// The deepest nesting of arrays and objects accepted; `[[1]]` has depth 2, a scalar depth 0.
    ///
    /// The parser itself does not recurse, but comparing, serialising and destroying a value do,
    /// so keep this in the hundreds at most.
    public var maxDepth: Int
    /// The longest input accepted, in bytes.
    public var maxBytes: Int

    public init(maxDepth: Int = 64, maxBytes: Int = 1 << 20) {
        self.maxDepth = maxDepth
        self.maxBytes = maxBytes
    }

    /// 64 levels, 1 MiB.
    public static let `default` = JSONLimits()
}

/// Why a text is not JSON, and where the parser found out.
public struct JSONParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Reason: Sendable, Hashable {
        /// The input ended inside a value, or held no value at all.
        case unexpectedEnd
        /// A byte that cannot start or continue what was expected.
        case unexpectedByte(UInt8, expected: String)
        /// A number that breaks the grammar (leading zero, missing digits).
        case invalidNumber
        /// A number too large in magnitude to be a finite `Double`.
        case numberOutOfRange
        /// A backslash followed by something other than `"\/bfnrtu`.
        case invalidEscape
        /// `\u` not followed by four hex digits.
        case invalidUnicodeEscape
        /// A UTF-16 surrogate escape without its other half.
        case unpairedSurrogate
        /// A raw control character (below U+0020) inside a string.
        case controlCharacterInString
        /// String contents that are not valid UTF-8.
        case invalidUTF8
        /// Arrays and objects nested deeper than the limit.
        case tooDeep(limit: Int)
        /// More bytes than the limit.
        case tooLarge(limit: Int)
        /// Something other than whitespace after the value.
        case trailingCharacters
    }

    /// The byte offset in the input where the problem was found.
    public var offset: Int
    public var reason: Reason

    public init(offset: Int, reason: Reason) {
        self.offset = offset
        self.reason = reason
    }

    public var description: String {
        let what: String
        switch reason {
        case .unexpectedEnd: what = "unexpected end of input"
        case .unexpectedByte(let byte, let expected):
            let shown = (0x21...0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(hex2(byte))"
            what = "unexpected \(shown), expected \(expected)"
        case .invalidNumber: what = "invalid number"
        case .numberOutOfRange: what = "number out of range"
        case .invalidEscape: what = "invalid escape sequence"
        case .invalidUnicodeEscape: what = "invalid \\u escape"
        case .unpairedSurrogate: what = "unpaired UTF-16 surrogate"
        case .controlCharacterInString: what = "unescaped control character in string"
        case .invalidUTF8: what = "invalid UTF-8 in string"
        case .tooDeep(let limit): what = "nesting deeper than \(limit) levels"
        case .tooLarge(let limit): what = "input longer than \(limit) bytes"
        case .trailingCharacters: what = "unexpected characters after the value"
        }
        return "\(what) at offset \(offset)"
    }
}

private func hex2(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
}

extension JSONValue {
    /// Parses one JSON text (RFC 8259) from UTF-8 bytes.
    ///
    /// Total: any input either yields a value or throws; nothing traps, and nesting is handled
    /// without recursion. Whitespace may surround the value; anything else after it is an error.
    /// A byte order mark is not accepted. Duplicate object keys keep the last value.
    /// - Parameters:
    ///   - bytes: the UTF-8 text.
    ///   - limits: the deepest nesting and the longest input accepted.
    public static func parse<C: Collection<UInt8>>(
        _ bytes: C, limits: JSONLimits = .default
    ) throws(JSONParseError) -> JSONValue {
        let result = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JSONParseError) -> JSONValue in
                var parser = JSONParser(bytes: buffer, limits: limits)
                return try parser.parseDocument()
            }
        }
        if let result { return try result.get() }
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { buffer in
            Result { () throws(JSONParseError) -> JSONValue in
                var parser = JSONParser(bytes: buffer, limits: limits)
                return try parser.parseDocument()
            }
        }.get()
    }

    /// Parses one JSON text from a string; see ``parse(_:limits:)``.
    public static func parse(_ text: String, limits: JSONLimits = .default) throws(JSONParseError) -> JSONValue {
        try parse(text.utf8, limits: limits)
    }
}

// MARK: - The parser

private enum ASCII {
    static let quote: UInt8 = 0x22
    static let backslash: UInt8 = 0x5C
    static let slash: UInt8 = 0x2F
    static let comma: UInt8 = 0x2C
    static let colon: UInt8 = 0x3A
    static let openBracket: UInt8 = 0x5B
    static let closeBracket: UInt8 = 0x5D
    static let openBrace: UInt8 = 0x7B
    static let closeBrace: UInt8 = 0x7D
    static let minus: UInt8 = 0x2D
    static let plus: UInt8 = 0x2B
    static let dot: UInt8 = 0x2E
    static let zero: UInt8 = 0x30
    static let nine: UInt8 = 0x39
    static let lowerE: UInt8 = 0x65
    static let upperE: UInt8 = 0x45
}

/// An iterative recursive-descent parser: containers under construction live on explicit stacks,
/// so the depth limit is the only bound on nesting and the call stack never grows with the input.
private struct JSONParser {
    private enum Container { case array, object }

    let bytes: UnsafeBufferPointer<UInt8>
    let limits: JSONLimits
    private var index = 0

    private var kinds: [Container] = []
    private var arrays: [[JSONValue]] = []
    private var objects: [[String: JSONValue]] = []
    private var keys: [String] = []

    init(bytes: UnsafeBufferPointer<UInt8>, limits: JSONLimits) {
        self.bytes = bytes
        self.limits = limits
    }

    private func fail(_ reason: JSONParseError.Reason, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(offset: offset ?? index, reason: reason)
    }

    private func unexpected(expected: String) -> JSONParseError {
        if index >= bytes.count { return fail(.unexpectedEnd) }
        return fail(.unexpectedByte(bytes[index], expected: expected))
    }

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        guard bytes.count <= limits.maxBytes else {
            throw fail(.tooLarge(limit: limits.maxBytes), at: max(0, limits.maxBytes))
        }
        let value = try parseValue()
        skipWhitespace()
        guard index == bytes.count else { throw fail(.trailingCharacters) }
        return value
    }

    @inline(__always)
    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private mutating func openContainer(_ kind: Container) throws(JSONParseError) {
        guard kinds.count < limits.maxDepth else { throw fail(.tooDeep(limit: limits.maxDepth)) }
        kinds.append(kind)
        switch kind {
        case .array: arrays.append([])
        case .object: objects.append([:])
        }
    }

    /// Reads `"key" :` with the whitespace around it.
    private mutating func parseKey() throws(JSONParseError) -> String {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == ASCII.quote else { throw unexpected(expected: "a string key") }
        let key = try parseString()
        skipWhitespace()
        guard index < bytes.count, bytes[index] == ASCII.colon else { throw unexpected(expected: "':'") }
        index += 1
        return key
    }

    private mutating func parseValue() throws(JSONParseError) -> JSONValue {
        nextValue: while true {
            skipWhitespace()
            guard index < bytes.count else { throw fail(.unexpectedEnd) }
            var value: JSONValue
            switch bytes[index] {
            case ASCII.openBrace:
                try openContainer(.object)
                index += 1
                skipWhitespace()
                if index < bytes.count, bytes[index] == ASCII.closeBrace {
                    index += 1
                    kinds.removeLast()
                    value = .object(objects.removeLast())
                } else {
                    keys.append(try parseKey())
                    continue nextValue
                }
            case ASCII.openBracket:
                try openContainer(.array)
                index += 1
                skipWhitespace()
                if index < bytes.count, bytes[index] == ASCII.closeBracket {
                    index += 1
                    kinds.removeLast()
                    value = .array(arrays.removeLast())
                } else {
                    continue nextValue
                }
            case ASCII.quote:
                value = .string(try parseString())
            case 0x74: // t
                try expectLiteral("true")
                value = .bool(true)
            case 0x66: // f
                try expectLiteral("false")
                value = .bool(false)
            case 0x6E: // n
                try expectLiteral("null")
                value = .null
            case ASCII.minus, ASCII.zero...ASCII.nine:
                value = try parseNumber()
            default:
                throw unexpected(expected: "a value")
            }

            // Hand the finished value to the enclosing containers, closing those that end here.
            while let kind = kinds.last {
                switch kind {
                case .array: arrays[arrays.count - 1].append(value)
                case .object: objects[objects.count - 1][keys.removeLast()] = value
                }
                skipWhitespace()
                guard index < bytes.count else { throw fail(.unexpectedEnd) }
                let byte = bytes[index]
                if byte == ASCII.comma {
                    index += 1
                    if kind == .object { keys.append(try parseKey()) }
                    continue nextValue
                }
                switch kind {
                case .array:
                    guard byte == ASCII.closeBracket else { throw unexpected(expected: "',' or ']'") }
                    index += 1
                    kinds.removeLast()
                    value = .array(arrays.removeLast())
                case .object:
                    guard byte == ASCII.closeBrace else { throw unexpected(expected: "',' or '}'") }
                    index += 1
                    kinds.removeLast()
                    value = .object(objects.removeLast())
                }
            }
            return value
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        let start = literal.utf8Start
        for offset in 0..<count {
            guard index < bytes.count else { throw fail(.unexpectedEnd) }
            guard bytes[index] == start[offset] else {
                throw unexpected(expected: "'\(literal)'")
            }
            index += 1
        }
    }

    // MARK: Numbers

    @inline(__always)
    private func isDigit(_ byte: UInt8) -> Bool { byte >= ASCII.zero && byte <= ASCII.nine }

    private mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = index
        var negative = false
        if bytes[index] == ASCII.minus {
            negative = true
            index += 1
        }
        guard index < bytes.count else { throw fail(.unexpectedEnd) }
        var magnitude: UInt64 = 0
        var overflow = false
        let first = bytes[index]
        if first == ASCII.zero {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw fail(.invalidNumber, at: start) }
        } else if isDigit(first) {
            while index < bytes.count, isDigit(bytes[index]) {
                if !overflow {
                    let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
                    let (sum, o2) = times10.addingReportingOverflow(UInt64(bytes[index] - ASCII.zero))
                    overflow = o1 || o2
                    magnitude = sum
                }
                index += 1
            }
        } else {
            throw unexpected(expected: "a digit")
        }

        var integral = true
        if index < bytes.count, bytes[index] == ASCII.dot {
            integral = false
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw unexpected(expected: "a digit") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == ASCII.lowerE || bytes[index] == ASCII.upperE {
            integral = false
            index += 1
            if index < bytes.count, bytes[index] == ASCII.plus || bytes[index] == ASCII.minus { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw unexpected(expected: "a digit") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }

        if integral, !overflow {
            if negative {
                if magnitude <= UInt64(Int64.max) + 1 { return .int(Int64(bitPattern: 0 &- magnitude)) }
            } else if magnitude <= UInt64(Int64.max) {
                return .int(Int64(magnitude))
            }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let double = Double(text), double.isFinite else { throw fail(.numberOutOfRange, at: start) }
        return .double(double)
    }

    // MARK: Strings

    /// Reads a string; `bytes[index]` is its opening quote.
    private mutating func parseString() throws(JSONParseError) -> String {
        let opening = index
        index += 1
        let start = index
        // Fast path: no escapes, the contents are the bytes between the quotes.
        var nonASCII: UInt8 = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == ASCII.quote {
                let contents = UnsafeBufferPointer(rebasing: bytes[start..<index])
                index += 1
                // ASCII needs no validation; anything else must be valid UTF-8, not repaired.
                if nonASCII & 0x80 == 0 { return String(decoding: contents, as: UTF8.self) }
                guard let string = String(validating: contents, as: UTF8.self) else {
                    throw fail(.invalidUTF8, at: opening)
                }
                return string
            }
            nonASCII |= byte
            if byte == ASCII.backslash { break }
            if byte < 0x20 { throw fail(.controlCharacterInString) }
            index += 1
        }
        guard index < bytes.count else { throw fail(.unexpectedEnd) }

        var buffer: [UInt8] = []
        buffer.reserveCapacity(index - start + 16)
        buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while true {
            guard index < bytes.count else { throw fail(.unexpectedEnd) }
            let byte = bytes[index]
            switch byte {
            case ASCII.quote:
                guard let string = String(validating: buffer, as: UTF8.self) else {
                    throw fail(.invalidUTF8, at: opening)
                }
                index += 1
                return string
            case ASCII.backslash:
                index += 1
                guard index < bytes.count else { throw fail(.unexpectedEnd) }
                let escape = bytes[index]
                index += 1
                switch escape {
                case ASCII.quote: buffer.append(ASCII.quote)
                case ASCII.backslash: buffer.append(ASCII.backslash)
                case ASCII.slash: buffer.append(ASCII.slash)
                case 0x62: buffer.append(0x08) // b
                case 0x66: buffer.append(0x0C) // f
                case 0x6E: buffer.append(0x0A) // n
                case 0x72: buffer.append(0x0D) // r
                case 0x74: buffer.append(0x09) // t
                case 0x75: // u
                    let escapeStart = index - 2
                    let unit = try parseHex4()
                    let scalarValue: UInt32
                    switch unit {
                    case 0xD800...0xDBFF:
                        guard index + 1 < bytes.count, bytes[index] == ASCII.backslash, bytes[index + 1] == 0x75 else {
                            throw fail(.unpairedSurrogate, at: escapeStart)
                        }
                        index += 2
                        let low = try parseHex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw fail(.unpairedSurrogate, at: escapeStart) }
                        scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                    case 0xDC00...0xDFFF:
                        throw fail(.unpairedSurrogate, at: escapeStart)
                    default:
                        scalarValue = UInt32(unit)
                    }
                    guard let scalar = Unicode.Scalar(scalarValue) else { throw fail(.invalidUnicodeEscape, at: escapeStart) }
                    appendUTF8(scalar, to: &buffer)
                default:
                    throw fail(.invalidEscape, at: index - 2)
                }
            default:
                if byte < 0x20 { throw fail(.controlCharacterInString) }
                buffer.append(byte)
                index += 1
            }
        }
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt16 {
        guard index + 4 <= bytes.count else {
            throw fail(.invalidUnicodeEscape)
        }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case 0x30...0x39: digit = byte - 0x30
            case 0x41...0x46: digit = byte - 0x41 + 10
            case 0x61...0x66: digit = byte - 0x61 + 10
            default: throw fail(.invalidUnicodeEscape)
            }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }

    private func appendUTF8(_ scalar: Unicode.Scalar, to buffer: inout [UInt8]) {
        let value = scalar.value
        switch value {
        case 0..<0x80:
            buffer.append(UInt8(value))
        case 0x80..<0x800:
            buffer.append(UInt8(0xC0 | (value >> 6)))
            buffer.append(UInt8(0x80 | (value & 0x3F)))
        case 0x800..<0x10000:
            buffer.append(UInt8(0xE0 | (value >> 12)))
            buffer.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
            buffer.append(UInt8(0x80 | (value & 0x3F)))
        default:
            buffer.append(UInt8(0xF0 | (value >> 18)))
            buffer.append(UInt8(0x80 | ((value >> 12) & 0x3F)))
            buffer.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
            buffer.append(UInt8(0x80 | (value & 0x3F)))
        }
    }
}
