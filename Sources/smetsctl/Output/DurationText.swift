/// Durations as people type them on a command line: `90s`, `15m`, `2h`, `3d`, `1h30m`, or plain seconds.
enum DurationText {
    private static let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800]

    /// The number of seconds `text` stands for, or nil when it is not a duration (or overflows).
    ///
    /// A sequence of `<digits><unit>` parts, units `s`, `m`, `h`, `d`, `w` (case-insensitive), or
    /// digits alone for seconds. No signs, fractions or spaces inside.
    static func seconds(from text: String) -> Int64? {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty else { return nil }
        if trimmed.allSatisfy(\.isASCIIDigit) { return Int64(trimmed) }
        var total: Int64 = 0
        var digits = ""
        for character in trimmed {
            if character.isASCIIDigit {
                digits.append(character)
                continue
            }
            guard let unit = units[Character(character.lowercased())], !digits.isEmpty, let count = Int64(digits) else {
                return nil
            }
            let (part, overflow1) = count.multipliedReportingOverflow(by: unit)
            let (sum, overflow2) = total.addingReportingOverflow(part)
            guard !overflow1, !overflow2 else { return nil }
            total = sum
            digits = ""
        }
        return digits.isEmpty ? total : nil
    }

    /// `seconds` written compactly in the largest units that fit: `1d2h`, `15m`, `0s`, `-1h30m`.
    static func describe(seconds: Int64) -> String {
        if seconds == 0 { return "0s" }
        var remaining = seconds.magnitude
        var text = seconds < 0 ? "-" : ""
        for (unit, size) in [("d", UInt64(86_400)), ("h", 3_600), ("m", 60), ("s", 1)] where remaining >= size {
            text += "\(remaining / size)\(unit)"
            remaining %= size
        }
        return text
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
