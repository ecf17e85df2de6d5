import SMETSRPC

extension Engine.ClockReading {
    /// What `clock.get`, `clock.set` and `clock.advance` answer.
    var json: JSONValue {
        ["now": .string(now.rfc3339), "offsetSeconds": .double(Double(offsetMillis) / 1000),
         "tracksRealTime": .bool(offsetMillis == 0)]
    }
}
