/// A simple, deterministic load profile per meter: a mean demand drawn from the device ID and a fixed
/// daily shape of hourly weights. Consumption is the integral of it, so any meter's cumulative reading
/// at any virtual time is computed exactly, with no timer per device.
public enum LoadProfile {
    /// Relative demand in each hour of the day (scaled by `weightSum`): low overnight, morning and evening peaks.
    static let hourlyWeights: [Int64] = [
        55, 45, 40, 40, 45, 60, 90, 130, 120, 95, 85, 85,
        90, 85, 80, 85, 100, 140, 170, 160, 140, 120, 95, 70,
    ]
    /// Demand in hour h is `mean * 24 * hourlyWeights[h] / weightSum`, so a day's total is 24 h at mean demand.
    static let weightSum: Int64 = hourlyWeights.reduce(0, +)

    /// Mean demand in watts for an electricity meter, or litres per hour for gas, from the device ID.
    public static func meanDemand(device: EUI64, type: DeviceType) -> Int64 {
        var hash = device.rawValue &* 0x9E37_79B9_7F4A_7C15
        hash ^= hash >> 29
        let spread = Int64(hash % 400)
        return type == .gsme || type == .gpf ? 50 + spread / 4 : 250 + spread
    }

    /// Consumption from the profile's epoch (2020-01-01) to `time`, in Wh (electricity) or litres (gas).
    public static func cumulative(device: EUI64, type: DeviceType, at time: Timestamp) -> Int64 {
        let epoch: Int64 = 1_577_836_800_000
        let millis = max(0, time.unixMillis - epoch)
        let mean = meanDemand(device: device, type: type)
        let days = millis / 86_400_000
        let msInDay = millis % 86_400_000
        let fullHours = Int(msInDay / 3_600_000)
        // The day so far in weight-milliseconds, divided once: no per-hour rounding, no jump at midnight.
        var weighted: Int64 = 0
        for hour in 0..<fullHours { weighted += hourlyWeights[hour] * 3_600_000 }
        if fullHours < 24 { weighted += hourlyWeights[fullHours] * (msInDay % 3_600_000) }
        return days * 24 * mean + weighted * mean * 24 / (weightSum * 3_600_000)
    }

    /// Consumption on virtual day `day` (days since 1970-01-01).
    public static func dailyTotal(device: EUI64, type: DeviceType, day: Int64) -> Int64 {
        cumulative(device: device, type: type, at: .startOfDay(day + 1)) - cumulative(device: device, type: type, at: .startOfDay(day))
    }

    /// Consumption on virtual day `day` from `since` on, when `since` falls inside it (the day of a
    /// Change of Tenancy belongs to the new occupant only from its time), 0 when the day ended before it.
    public static func dailyTotal(device: EUI64, type: DeviceType, day: Int64, since: Timestamp?) -> Int64 {
        let start = Timestamp.startOfDay(day), end = Timestamp.startOfDay(day + 1)
        guard let since, since > start else { return dailyTotal(device: device, type: type, day: day) }
        guard since < end else { return 0 }
        return cumulative(device: device, type: type, at: end) - cumulative(device: device, type: type, at: since)
    }

    /// Instantaneous demand at `time`, in W (or L/h).
    public static func instantaneousDemand(device: EUI64, type: DeviceType, at time: Timestamp) -> Int64 {
        let hour = Int((time.unixMillis % 86_400_000 + 86_400_000) % 86_400_000 / 3_600_000)
        return meanDemand(device: device, type: type) * 24 * hourlyWeights[hour] / weightSum
    }
}
