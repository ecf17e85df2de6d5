/// A point on the virtual clock, in milliseconds since the Unix epoch.
///
/// The core never reads a real clock: the daemon passes time in, so every rule is testable with any
/// time and the emulated system can be run ahead of the wall clock.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var unixMillis: Int64

    public init(unixMillis: Int64) { self.unixMillis = unixMillis }
    public init(unixSeconds: Int64) { self.unixMillis = unixSeconds.multipliedReportingOverflow(by: 1000).partialValue }

    public var unixSeconds: Int64 { unixMillis.floorDiv(1000) }

    /// Seconds since 2000-01-01T00:00:00Z, the ZCL UTC time, clamped to the u32 range.
    public var zigbeeUTC: UInt32 {
        let seconds = unixSeconds - Timestamp.zigbeeEpochOffset
        return UInt32(clamping: seconds)
    }

    public init(zigbeeUTC: UInt32) { self.init(unixSeconds: Int64(zigbeeUTC) + Timestamp.zigbeeEpochOffset) }

    public static let zigbeeEpochOffset: Int64 = 946_684_800

    /// The day number (days since 1970-01-01, UTC) this instant falls in.
    public var dayNumber: Int64 { unixMillis.floorDiv(86_400_000) }
    public static func startOfDay(_ day: Int64) -> Timestamp { Timestamp(unixMillis: day * 86_400_000) }

    public func adding(seconds: Int64) -> Timestamp { Timestamp(unixMillis: unixMillis &+ seconds &* 1000) }
    public func adding(millis: Int64) -> Timestamp { Timestamp(unixMillis: unixMillis &+ millis) }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.unixMillis < rhs.unixMillis }

    /// RFC 3339 in UTC, seconds precision unless there are milliseconds: `2026-11-23T06:05:20Z`.
    public var rfc3339: String {
        let days = unixMillis.floorDiv(86_400_000)
        let msOfDay = unixMillis - days * 86_400_000
        let (year, month, day) = civilDate(fromDays: days)
        let seconds = msOfDay / 1000, millis = msOfDay % 1000
        var text = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(seconds / 3600, 2)):\(pad(seconds / 60 % 60, 2)):\(pad(seconds % 60, 2))"
        if millis != 0 { text += ".\(pad(millis, 3))" }
        return text + "Z"
    }

    /// The calendar date, `2026-11-23`.
    public static func dateString(day: Int64) -> String {
        let (year, month, dayOfMonth) = civilDate(fromDays: day)
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(dayOfMonth, 2))"
    }

    /// Parses RFC 3339 (`2026-11-23T06:05:20Z`, fractional seconds and `+hh:mm` offsets allowed).
    public init?(rfc3339 text: String) {
        let chars = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int64? {
            guard range.upperBound <= chars.count else { return nil }
            var value: Int64 = 0
            for index in range {
                let char = chars[index]
                guard char >= 48, char <= 57 else { return nil }
                value = value * 10 + Int64(char - 48)
            }
            return value
        }
        guard chars.count >= 20, chars[4] == UInt8(ascii: "-"), chars[7] == UInt8(ascii: "-"),
              chars[10] == UInt8(ascii: "T") || chars[10] == UInt8(ascii: "t") || chars[10] == UInt8(ascii: " "),
              chars[13] == UInt8(ascii: ":"), chars[16] == UInt8(ascii: ":"),
              let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var index = 19
        var millis: Int64 = 0
        if index < chars.count, chars[index] == UInt8(ascii: ".") {
            index += 1
            var scale: Int64 = 100
            let start = index
            while index < chars.count, chars[index] >= 48, chars[index] <= 57 {
                millis += Int64(chars[index] - 48) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        guard index < chars.count else { return nil }
        var offsetSeconds: Int64 = 0
        switch chars[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            index += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign: Int64 = chars[index] == UInt8(ascii: "+") ? 1 : -1
            guard let oh = number(index + 1..<index + 3), index + 3 < chars.count, chars[index + 3] == UInt8(ascii: ":"),
                  let om = number(index + 4..<index + 6), oh < 24, om < 60 else { return nil }
            offsetSeconds = sign * (oh * 3600 + om * 60)
            index += 6
        default:
            return nil
        }
        guard index == chars.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        // A day the month does not have (31 April, 29 February 2023) is refused, not rolled over.
        guard civilDate(fromDays: days) == (year, month, day) else { return nil }
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + min(second, 59) - offsetSeconds
        self.init(unixMillis: seconds * 1000 + millis)
    }

    public var description: String { rfc3339 }
}

private func pad(_ value: Int64, _ width: Int) -> String {
    let text = String(value)
    return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
}

// Howard Hinnant's days-from-civil algorithms: exact for the proleptic Gregorian calendar.
func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = (month + 9) % 12
    let doy = (153 * mp + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
}

func civilDate(fromDays days: Int64) -> (Int64, Int64, Int64) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
}

extension Int64 {
    /// Division rounding toward negative infinity, so times before 1970 fall in the right day.
    func floorDiv(_ divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}

/// The emulator's clock: real time plus an offset the control API sets and advances.
///
/// It is a value: the daemon owns one, persists `offsetMillis`, and asks it for `now(real:)`.
public struct VirtualClock: Hashable, Sendable {
    public var offsetMillis: Int64

    public init(offsetMillis: Int64 = 0) { self.offsetMillis = offsetMillis }

    public func now(real: Timestamp) -> Timestamp { real.adding(millis: offsetMillis) }

    /// The real instant at which the virtual clock shows `virtual`.
    public func realTime(for virtual: Timestamp) -> Timestamp { virtual.adding(millis: -offsetMillis) }

    public mutating func set(to virtual: Timestamp, real: Timestamp) { offsetMillis = virtual.unixMillis - real.unixMillis }
    public mutating func advance(byMillis millis: Int64) { offsetMillis &+= millis }

    public var tracksRealTime: Bool { offsetMillis == 0 }
}
