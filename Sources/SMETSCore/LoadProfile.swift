/// A simple, deterministic load profile per meter: a mean demand drawn from the device ID and a fixed
/// daily shape of hourly weights. Consumption is the integral of it, so any meter's cumulative reading
/// at any virtual time is computed exactly, with no timer per device.
public enum LoadProfile {
    /// Relative demand in each hour of the day (mean 1.0): low overnight, morning and evening peaks.
    static let hourlyWeights: [Int64] = [
        55, 45, 40, 40, 45, 60, 90, 130, 120, 95, 85, 85,
        90, 85, 80, 85, 100, 140, 170, 160, 140, 120, 95, 70,
    ]
    static let weightSum: Int64 = hourlyWeights.reduce(0, +)  // 2400: the weights average 100

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
        var total = days * 24 * mean  // a whole day's weights sum to 24 hours at mean demand
        let msInDay = millis % 86_400_000
        let fullHours = Int(msInDay / 3_600_000)
        for hour in 0..<fullHours { total += hourlyWeights[hour] * mean / 100 }
        if fullHours < 24 {
            let partial = msInDay % 3_600_000
            total += hourlyWeights[fullHours] * mean * partial / 100 / 3_600_000
        }
        return total
    }

    /// Consumption on virtual day `day` (days since 1970-01-01).
    public static func dailyTotal(device: EUI64, type: DeviceType, day: Int64) -> Int64 {
        cumulative(device: device, type: type, at: .startOfDay(day + 1)) - cumulative(device: device, type: type, at: .startOfDay(day))
    }

    /// Instantaneous demand at `time`, in W (or L/h).
    public static func instantaneousDemand(device: EUI64, type: DeviceType, at time: Timestamp) -> Int64 {
        let hour = Int((time.unixMillis % 86_400_000 + 86_400_000) % 86_400_000 / 3_600_000)
        return meanDemand(device: device, type: type) * hourlyWeights[hour] / 100
    }
}
