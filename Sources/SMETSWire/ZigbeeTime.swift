/// Zigbee UTC time: u32 seconds since 2000-01-01T00:00:00Z, the form every ZCL UTC field takes.
///
/// Conversions are total: they saturate rather than trap at either end of the range.
public enum ZigbeeTime {
    /// Unix seconds at the Zigbee epoch, 2000-01-01T00:00:00Z.
    public static let unixEpochOffset: Int64 = 946_684_800
    /// ZCL's "invalid" UTC time.
    public static let invalid: UInt32 = 0xFFFF_FFFF
    /// The latest valid Zigbee time.
    public static let latest: UInt32 = 0xFFFF_FFFE

    /// Unix seconds for a Zigbee time, nil for ``invalid``.
    public static func unixSeconds(fromZigbee zigbee: UInt32) -> Int64? {
        zigbee == invalid ? nil : Int64(zigbee) + unixEpochOffset
    }

    /// The Zigbee time of a Unix time: 0 for anything before 2000, ``latest`` for anything past 2136,
    /// so that the result is never mistaken for ``invalid``.
    public static func zigbee(fromUnixSeconds unix: Int64) -> UInt32 {
        // Compare before subtracting: Int64.min - offset would overflow.
        guard unix > unixEpochOffset else { return 0 }
        let seconds = unix - unixEpochOffset
        return seconds >= Int64(latest) ? latest : UInt32(seconds)
    }
}
