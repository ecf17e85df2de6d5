import Testing
@testable import SMETSCore

@Suite("Timestamp: RFC 3339 and Zigbee UTC")
struct TimestampTests {
    @Test("a UTC time parses to its Unix instant and formats back to the same text")
    func utcRoundTrip() throws {
        let stamp = try #require(Timestamp(rfc3339: "2026-11-23T06:05:20Z"))
        #expect(stamp.unixSeconds == 1_795_413_920)
        #expect(stamp.unixMillis == 1_795_413_920_000)
        #expect(stamp.rfc3339 == "2026-11-23T06:05:20Z")
        #expect(stamp.description == "2026-11-23T06:05:20Z")
        #expect(Timestamp(unixSeconds: 0).rfc3339 == "1970-01-01T00:00:00Z")
    }

    @Test("offsets are applied and the time formats in UTC", arguments: [
        ("2026-11-23T07:05:20+01:00", "2026-11-23T06:05:20Z"),
        ("2026-11-23T00:35:20-05:30", "2026-11-23T06:05:20Z"),
        ("2026-11-23T06:05:20+00:00", "2026-11-23T06:05:20Z"),
        ("2026-11-23T06:05:20-00:00", "2026-11-23T06:05:20Z"),
        ("2027-01-01T01:30:00+02:00", "2026-12-31T23:30:00Z"),
        ("1970-01-01T00:59:59+01:00", "1969-12-31T23:59:59Z"),
    ])
    func offsets(text: String, utc: String) throws {
        let stamp = try #require(Timestamp(rfc3339: text))
        #expect(stamp.rfc3339 == utc)
        #expect(Timestamp(rfc3339: utc) == stamp)
    }

    @Test("fractional seconds keep milliseconds and drop finer digits", arguments: [
        ("2026-11-23T06:05:20.5Z", 500, "2026-11-23T06:05:20.500Z"),
        ("2026-11-23T06:05:20.05Z", 50, "2026-11-23T06:05:20.050Z"),
        ("2026-11-23T06:05:20.123Z", 123, "2026-11-23T06:05:20.123Z"),
        ("2026-11-23T06:05:20.123999Z", 123, "2026-11-23T06:05:20.123Z"),
        ("2026-11-23T06:05:20.000Z", 0, "2026-11-23T06:05:20Z"),
        ("2026-11-23T07:05:20.250+01:00", 250, "2026-11-23T06:05:20.250Z"),
    ])
    func fractions(text: String, millis: Int64, formatted: String) throws {
        let stamp = try #require(Timestamp(rfc3339: text))
        #expect(stamp.unixMillis == 1_795_413_920_000 + millis)
        #expect(stamp.rfc3339 == formatted)
        #expect(Timestamp(rfc3339: formatted) == stamp)
    }

    @Test("lowercase t and z and a space separator are accepted, as RFC 3339 allows")
    func separators() {
        let expected = Timestamp(unixSeconds: 1_795_413_920)
        #expect(Timestamp(rfc3339: "2026-11-23t06:05:20z") == expected)
        #expect(Timestamp(rfc3339: "2026-11-23 06:05:20Z") == expected)
    }

    @Test("invalid text is nil, not a guess", arguments: [
        "", "2026", "2026-11-23", "2026-11-23T06:05:20", "2026-11-23T06:05Z", "2026/11/23T06:05:20Z",
        "2026-11-23X06:05:20Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-11-00T00:00:00Z",
        "2026-11-32T00:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23T06:60:00Z", "2026-11-23T06:05:62Z",
        "2026-11-23T06:05:20+0100", "2026-11-23T06:05:20+01", "2026-11-23T06:05:20.Z", "2026-11-23T06:05:20ZZ",
        "2026-11-23T06:05:20Z ", " 2026-11-23T06:05:20Z", "2026-11-23T06:05:2aZ", "-026-11-23T06:05:20Z",
        "2026-11-23T06:05:20+01:0x", "2026-1-23T06:05:20Z", "2026-11-23T06:05:20+24:00", "2026-11-23T06:05:20+01:60",
        "2026-11-23T06:05:20+01:00:00",
        // Days that do not exist in their month (RFC 3339 section 5.7).
        "2026-04-31T00:00:00Z", "2026-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2100-02-29T00:00:00Z",
    ])
    func invalid(text: String) {
        #expect(Timestamp(rfc3339: text) == nil)
    }

    @Test("leap years: 29 February exists in 2024 and 2000", arguments: [
        ("2024-02-29T12:00:00Z", Int64(1_709_208_000)),
        ("2000-02-29T00:00:00Z", Int64(951_782_400)),
    ])
    func leapDays(text: String, seconds: Int64) throws {
        let stamp = try #require(Timestamp(rfc3339: text))
        #expect(stamp.unixSeconds == seconds)
        #expect(stamp.rfc3339 == text)
        #expect(stamp.adding(seconds: 86_400).rfc3339.hasPrefix(text.hasPrefix("2024") ? "2024-03-01" : "2000-03-01"))
    }

    @Test("every day from 1899 to 2101 formats and parses back to itself")
    func everyDay() throws {
        let first = try #require(Timestamp(rfc3339: "1899-01-01T00:00:00Z")).dayNumber
        let last = try #require(Timestamp(rfc3339: "2101-12-31T00:00:00Z")).dayNumber
        var previous: String?
        for day in first...last {
            let start = Timestamp.startOfDay(day)
            let text = start.rfc3339
            #expect(text == Timestamp.dateString(day: day) + "T00:00:00Z")
            #expect(Timestamp(rfc3339: text) == start)
            #expect(start.dayNumber == day)
            if let previous { #expect(previous < text, "days format in order") }
            previous = text
        }
    }

    @Test("times before 1970 format and parse, and fall in the right day")
    func before1970() throws {
        let moon = try #require(Timestamp(rfc3339: "1969-07-20T20:17:40Z"))
        #expect(moon.unixSeconds == -14_182_940)
        #expect(moon.rfc3339 == "1969-07-20T20:17:40Z")
        #expect(try #require(Timestamp(rfc3339: "1900-03-01T00:00:00Z")).unixSeconds == -2_203_891_200)

        let justBefore = Timestamp(unixMillis: -1)
        #expect(justBefore.rfc3339 == "1969-12-31T23:59:59.999Z")
        #expect(justBefore.unixSeconds == -1)
        #expect(justBefore.dayNumber == -1)
        #expect(Timestamp(rfc3339: "1969-12-31T23:59:59.999Z") == justBefore)
        #expect(Timestamp(unixMillis: -500).rfc3339 == "1969-12-31T23:59:59.500Z")
        #expect(Timestamp.dateString(day: -1) == "1969-12-31")
        #expect(Timestamp.dateString(day: 0) == "1970-01-01")
    }

    @Test("a leap second is accepted and read as :59")
    func leapSecond() throws {
        let stamp = try #require(Timestamp(rfc3339: "2016-12-31T23:59:60Z"))
        #expect(stamp.rfc3339 == "2016-12-31T23:59:59Z")
    }

    @Test("Zigbee UTC counts seconds from 2000-01-01T00:00:00Z")
    func zigbee() throws {
        let epoch = try #require(Timestamp(rfc3339: "2000-01-01T00:00:00Z"))
        #expect(epoch.zigbeeUTC == 0)
        #expect(Timestamp(zigbeeUTC: 0) == epoch)
        #expect(epoch.adding(seconds: 1).zigbeeUTC == 1)
        #expect(epoch.adding(millis: 999).zigbeeUTC == 0, "milliseconds are truncated")
        let stamp = try #require(Timestamp(rfc3339: "2026-11-23T06:05:20Z"))
        #expect(stamp.zigbeeUTC == 1_795_413_920 - 946_684_800)
        #expect(Timestamp(zigbeeUTC: stamp.zigbeeUTC) == stamp)
        #expect(Timestamp(zigbeeUTC: .max).rfc3339 == "2136-02-07T06:28:15Z")
    }

    @Test("Zigbee UTC clamps times outside the u32 range")
    func zigbeeClamps() throws {
        #expect(try #require(Timestamp(rfc3339: "1999-12-31T23:59:59Z")).zigbeeUTC == 0)
        #expect(Timestamp(unixSeconds: -1_000_000).zigbeeUTC == 0)
        #expect(Timestamp(zigbeeUTC: .max).adding(seconds: 1).zigbeeUTC == .max)
    }

    @Test("ordering and arithmetic")
    func ordering() {
        let a = Timestamp(unixSeconds: 10)
        #expect(a < a.adding(millis: 1))
        #expect(a.adding(seconds: -10) == Timestamp(unixMillis: 0))
        #expect(Timestamp.startOfDay(1) == Timestamp(unixSeconds: 86_400))
        #expect(Timestamp(unixSeconds: 86_399).dayNumber == 0)
    }
}

@Suite("VirtualClock")
struct VirtualClockTests {
    let real = Timestamp(unixSeconds: 1_700_000_000)

    @Test("a new clock shows real time")
    func tracksRealTime() {
        let clock = VirtualClock()
        #expect(clock.tracksRealTime)
        #expect(clock.now(real: real) == real)
        #expect(clock.realTime(for: real) == real)
    }

    @Test("set shows the virtual time now, and time then runs at the real rate")
    func set() throws {
        var clock = VirtualClock()
        let virtual = try #require(Timestamp(rfc3339: "2030-06-01T12:00:00Z"))
        clock.set(to: virtual, real: real)
        #expect(!clock.tracksRealTime)
        #expect(clock.now(real: real) == virtual)
        #expect(clock.now(real: real.adding(seconds: 90)) == virtual.adding(seconds: 90))
        #expect(clock.realTime(for: virtual) == real)
        #expect(clock.realTime(for: virtual.adding(seconds: 3600)) == real.adding(seconds: 3600))

        // Into the past too.
        let past = try #require(Timestamp(rfc3339: "1999-01-01T00:00:00Z"))
        clock.set(to: past, real: real)
        #expect(clock.now(real: real) == past)
        #expect(clock.offsetMillis < 0)
    }

    @Test("advance moves the virtual time and keeps realTime its inverse")
    func advance() {
        var clock = VirtualClock()
        clock.advance(byMillis: 86_400_000)
        #expect(clock.now(real: real) == real.adding(seconds: 86_400))
        clock.advance(byMillis: -86_400_000)
        #expect(clock.tracksRealTime)
        clock.advance(byMillis: 1_500)
        let virtual = clock.now(real: real)
        #expect(virtual.unixMillis == real.unixMillis + 1_500)
        #expect(clock.realTime(for: virtual) == real)
    }
}
