import Testing
@testable import SMETSCore

@Suite("Load profile")
struct LoadProfileTests {
    static let meters: [(EUI64, DeviceType)] = [
        (EUI64(0x00DB_1234_5678_0002), .esme), (EUI64(0x00DB_1234_5679_0002), .esme), (EUI64(0x00DB_F000_0000_0009), .esme),
        (EUI64(0x00DB_1234_5678_0003), .gsme), (EUI64(0x00DB_1234_5678_0004), .gpf), (EUI64(0), .esme),
    ]
    /// 2026-03-29 (day 20541), the day British clocks go forward: the profile runs on UTC and does not care.
    static let day: Int64 = 20_541

    @Test("mean demand: electricity 250...649 W, gas 50...149 L/h, deterministic per device")
    func ranges() {
        var generator = SplitMix64(seed: 7)
        var electricity: Set<Int64> = [], gas: Set<Int64> = []
        for _ in 0..<2_000 {
            let id = EUI64(generator.next())
            let e = LoadProfile.meanDemand(device: id, type: .esme)
            let g = LoadProfile.meanDemand(device: id, type: .gsme)
            #expect((250...649).contains(e))
            #expect((50...149).contains(g))
            #expect(LoadProfile.meanDemand(device: id, type: .gpf) == g, "a GPF mirrors its gas meter's profile")
            #expect(LoadProfile.meanDemand(device: id, type: .esme) == e)
            electricity.insert(e); gas.insert(g)
        }
        #expect(electricity.count > 100, "the device ID spreads the demand")
        #expect(gas.count > 50)
    }

    @Test("the cumulative reading never goes down, not even across midnight")
    func monotonic() {
        for (meter, type) in Self.meters {
            var previous = LoadProfile.cumulative(device: meter, type: type, at: .startOfDay(Self.day - 1))
            var millis = Timestamp.startOfDay(Self.day - 1).unixMillis
            let end = Timestamp.startOfDay(Self.day + 2).unixMillis
            while millis <= end {
                let value = LoadProfile.cumulative(device: meter, type: type, at: Timestamp(unixMillis: millis))
                #expect(value >= previous)
                previous = value
                millis += 7 * 60_000 + 13_001
            }
        }
    }

    @Test("the reading is continuous at midnight: a millisecond adds at most one unit")
    func continuousAtMidnight() {
        for (meter, type) in Self.meters {
            for day in [Self.day, Self.day + 1, 19_000] {
                let midnight = Timestamp.startOfDay(day)
                let before = LoadProfile.cumulative(device: meter, type: type, at: midnight.adding(millis: -1))
                let after = LoadProfile.cumulative(device: meter, type: type, at: midnight)
                #expect(after - before <= 1, "\(meter) jumps by \(after - before) at \(midnight)")
                #expect(after >= before)
            }
        }
    }

    @Test("daily totals sum to the differences of the cumulative readings")
    func dailyTotals() {
        for (meter, type) in Self.meters {
            var sum: Int64 = 0
            for day in Self.day..<(Self.day + 10) {
                let total = LoadProfile.dailyTotal(device: meter, type: type, day: day)
                #expect(total > 0)
                sum += total
            }
            let difference = LoadProfile.cumulative(device: meter, type: type, at: .startOfDay(Self.day + 10))
                - LoadProfile.cumulative(device: meter, type: type, at: .startOfDay(Self.day))
            #expect(sum == difference)
        }
    }

    @Test("a day's consumption is the mean demand for 24 hours, and the hourly demands integrate to it")
    func dayMatchesDemand() {
        for (meter, type) in Self.meters {
            let mean = LoadProfile.meanDemand(device: meter, type: type)
            let total = LoadProfile.dailyTotal(device: meter, type: type, day: Self.day)
            #expect(total == 24 * mean)
            var integrated: Int64 = 0
            for hour in 0..<24 {
                let start = Timestamp.startOfDay(Self.day).adding(seconds: Int64(hour) * 3600)
                let demand = LoadProfile.instantaneousDemand(device: meter, type: type, at: start)
                #expect(demand > 0)
                #expect(LoadProfile.instantaneousDemand(device: meter, type: type, at: start.adding(seconds: 3599)) == demand,
                        "demand is constant within the hour")
                integrated += demand
                // The reading over the hour grows by the hour's demand (to rounding).
                let grown = LoadProfile.cumulative(device: meter, type: type, at: start.adding(seconds: 3600))
                    - LoadProfile.cumulative(device: meter, type: type, at: start)
                #expect(abs(grown - demand) <= 1, "hour \(hour): grew \(grown), demand \(demand)")
            }
            #expect(abs(integrated - total) <= 24, "hourly demand integrates to \(integrated), the day is \(total)")
        }
    }

    @Test("evening demand is above the night's, and nothing is counted before the profile's epoch")
    func shapeAndEpoch() throws {
        let meter = EUI64(0x00DB_1234_5678_0002)
        let midnight = Timestamp.startOfDay(Self.day)
        #expect(LoadProfile.instantaneousDemand(device: meter, type: .esme, at: midnight.adding(seconds: 18 * 3600))
            > LoadProfile.instantaneousDemand(device: meter, type: .esme, at: midnight.adding(seconds: 3 * 3600)))
        let epoch = try #require(Timestamp(rfc3339: "2020-01-01T00:00:00Z"))
        #expect(LoadProfile.cumulative(device: meter, type: .esme, at: epoch) == 0)
        #expect(LoadProfile.cumulative(device: meter, type: .esme, at: epoch.adding(seconds: -86_400)) == 0)
        #expect(LoadProfile.cumulative(device: meter, type: .esme, at: epoch.adding(seconds: 3600)) > 0)
        #expect(LoadProfile.instantaneousDemand(device: meter, type: .esme, at: Timestamp(unixMillis: -1)) > 0,
                "demand is defined before 1970 too")
    }

    @Test("SECMP0056: the day of a Change of Tenancy splits at its time; the parts add up to the day")
    func daySplitAtTheChange() {
        for (meter, type) in Self.meters {
            let whole = LoadProfile.dailyTotal(device: meter, type: type, day: Self.day)
            let start = Timestamp.startOfDay(Self.day)
            for hour: Int64 in [1, 7, 13, 23] {
                let change = Timestamp(unixMillis: start.unixMillis + hour * 3_600_000 + 1_234)
                let after = LoadProfile.dailyTotal(device: meter, type: type, day: Self.day, since: change)
                let before = LoadProfile.cumulative(device: meter, type: type, at: change) - LoadProfile.cumulative(device: meter, type: type, at: start)
                #expect(before + after == whole)
                #expect(after < whole && after > 0)
            }
            #expect(LoadProfile.dailyTotal(device: meter, type: type, day: Self.day, since: nil) == whole)
            #expect(LoadProfile.dailyTotal(device: meter, type: type, day: Self.day, since: start) == whole, "a change at midnight leaves the day whole")
            #expect(LoadProfile.dailyTotal(device: meter, type: type, day: Self.day, since: .startOfDay(Self.day - 3)) == whole)
            #expect(LoadProfile.dailyTotal(device: meter, type: type, day: Self.day, since: .startOfDay(Self.day + 1)) == 0, "a day before the change is the prior occupant's")
        }
    }
}
