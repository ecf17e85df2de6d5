extension JSONValue {
    /// The compact JSON text of this value: no whitespace, strings escaped as RFC 8259 requires.
    ///
    /// Non-finite doubles, which JSON cannot carry, are written as `null`.
    /// - Parameter sortedKeys: write object members in key order, so equal values give equal texts.
    public func serialized(sortedKeys: Bool = true) -> String {
        String(decoding: serializedBytes(sortedKeys: sortedKeys), as: UTF8.self)
    }

    /// The compact JSON text of this value as UTF-8 bytes; see ``serialized(sortedKeys:)``.
    public func serializedBytes(sortedKeys: Bool = true) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(64)
        write(to: &output, sortedKeys: sortedKeys)
        return output
    }

    /// Appends the compact JSON text of this value to `output`.
    public func write(to output: inout [UInt8], sortedKeys: Bool = true) {
        switch self {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value): appendInteger(value, to: &output)
        case .double(let value): appendDouble(value, to: &output)
        case .string(let value): appendEscaped(value, to: &output)
        case .array(let elements):
            output.append(0x5B)
            for (offset, element) in elements.enumerated() {
                if offset > 0 { output.append(0x2C) }
                element.write(to: &output, sortedKeys: sortedKeys)
            }
            output.append(0x5D)
        case .object(let members):
            output.append(0x7B)
            var first = true
            func member(_ key: String, _ value: JSONValue) {
                if !first { output.append(0x2C) }
                first = false
                appendEscaped(key, to: &output)
                output.append(0x3A)
                value.write(to: &output, sortedKeys: sortedKeys)
            }
            if sortedKeys {
                for (key, value) in members.sorted(by: { $0.key < $1.key }) { member(key, value) }
            } else {
                for (key, value) in members { member(key, value) }
            }
            output.append(0x7D)
        }
    }

    /// Indented JSON for people: two spaces a level, `"key": value`, keys sorted.
    public func prettyPrinted() -> String {
        var output: [UInt8] = []
        writePretty(to: &output, indent: 0)
        return String(decoding: output, as: UTF8.self)
    }

    private func writePretty(to output: inout [UInt8], indent: Int) {
        func newline(_ level: Int) {
            output.append(0x0A)
            output.append(contentsOf: repeatElement(0x20, count: level * 2))
        }
        switch self {
        case .array(let elements) where !elements.isEmpty:
            output.append(0x5B)
            for (offset, element) in elements.enumerated() {
                if offset > 0 { output.append(0x2C) }
                newline(indent + 1)
                element.writePretty(to: &output, indent: indent + 1)
            }
            newline(indent)
            output.append(0x5D)
        case .object(let members) where !members.isEmpty:
            output.append(0x7B)
            for (offset, (key, value)) in members.sorted(by: { $0.key < $1.key }).enumerated() {
                if offset > 0 { output.append(0x2C) }
                newline(indent + 1)
                appendEscaped(key, to: &output)
                output.append(contentsOf: ": ".utf8)
                value.writePretty(to: &output, indent: indent + 1)
            }
            newline(indent)
            output.append(0x7D)
        default:
            write(to: &output)
        }
    }
}

private func appendInteger(_ value: Int64, to output: inout [UInt8]) {
    if value >= 0 && value < 10 {
        output.append(0x30 + UInt8(value))
        return
    }
    output.append(contentsOf: String(value).utf8)
}

private func appendDouble(_ value: Double, to output: inout [UInt8]) {
    guard value.isFinite else {
        output.append(contentsOf: "null".utf8)
        return
    }
    // Swift's shortest round-tripping form ("0.1", "5.0", "1e+100", "-0.0") is valid JSON.
    output.append(contentsOf: value.description.utf8)
}

private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

private func appendEscaped(_ string: String, to output: inout [UInt8]) {
    output.append(0x22)
    var contiguous = string
    contiguous.withUTF8 { appendEscaped(bytes: $0, to: &output) }
    output.append(0x22)
}

private func appendEscaped(bytes: UnsafeBufferPointer<UInt8>, to output: inout [UInt8]) {
    var runStart = 0
    for index in bytes.indices {
        let byte = bytes[index]
        guard byte < 0x20 || byte == 0x22 || byte == 0x5C else { continue }
        if runStart < index { output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index])) }
        runStart = index + 1
        output.append(0x5C)
        switch byte {
        case 0x22: output.append(0x22)
        case 0x5C: output.append(0x5C)
        case 0x0A: output.append(0x6E)
        case 0x0D: output.append(0x72)
        case 0x09: output.append(0x74)
        case 0x08: output.append(0x62)
        case 0x0C: output.append(0x66)
        default:
            output.append(contentsOf: [0x75, 0x30, 0x30, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]])
        }
    }
    if runStart < bytes.count { output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count])) }
}
