/// A shape check for RFC 3339 date-times (`2027-01-01T00:00:00Z`, `2027-01-01T01:00:00.5+01:00`),
/// so that a typo is a usage error here rather than a round trip to the daemon, which decides
/// whether the time is one it can represent.
enum RFC3339 {
    static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        func digits(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for index in range {
                guard (0x30...0x39).contains(bytes[index]) else { return nil }
                value = value * 10 + Int(bytes[index] - 0x30)
            }
            return value
        }
        func byte(_ index: Int, _ expected: Character) -> Bool {
            index < bytes.count && Character(Unicode.Scalar(bytes[index])).lowercased() == expected.lowercased()
        }
        guard digits(0..<4) != nil, byte(4, "-"), let month = digits(5..<7), byte(7, "-"), let day = digits(8..<10),
              byte(10, "T"), let hour = digits(11..<13), byte(13, ":"), let minute = digits(14..<16), byte(16, ":"),
              let second = digits(17..<19),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second <= 60
        else { return false }
        var index = 19
        if byte(index, ".") {
            index += 1
            let start = index
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
            guard index > start else { return false }
        }
        if byte(index, "Z") { return index + 1 == bytes.count }
        guard byte(index, "+") || byte(index, "-"), let offsetHours = digits(index + 1..<index + 3), byte(index + 3, ":"),
              let offsetMinutes = digits(index + 4..<index + 6), offsetHours < 24, offsetMinutes < 60
        else { return false }
        return index + 6 == bytes.count
    }
}
