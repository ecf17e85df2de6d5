import SMETSCore

/// Frames a delay rule holds, each due at a virtual time. Two things release a frame, whichever
/// comes first: its wall timer (the virtual clock runs at real speed between steps, so the delay is
/// the same on both clocks), or a step of the virtual clock (`clock.advance`, `clock.set` forward)
/// to or past its due time, which releases every frame due by then in due order, at once and
/// deterministically, with no timer involved. Pure: the daemon keeps it behind a lock and runs the
/// payloads it hands back.
public struct DelayedFrames<Payload: Sendable>: Sendable {
    struct Held: Sendable {
        var due: Timestamp
        var payload: Payload
    }

    /// By token; tokens grow with arrival, so (due, token) orders frames due at once as they came.
    private var held: [UInt64: Held] = [:]
    private var nextToken: UInt64 = 0

    public init() {}

    public var count: Int { held.count }

    /// Holds `payload` until `due`; the token lets its wall timer take it.
    public mutating func hold(_ payload: Payload, due: Timestamp) -> UInt64 {
        nextToken += 1
        held[nextToken] = Held(due: due, payload: payload)
        return nextToken
    }

    /// The frame behind `token`, when a clock step has not released it already (its wall timer fired).
    public mutating func take(_ token: UInt64) -> Payload? { held.removeValue(forKey: token)?.payload }

    /// Every frame due at or before `now`, earliest first (ties in arrival order): what a step of the
    /// virtual clock to `now` releases.
    public mutating func release(dueBy now: Timestamp) -> [Payload] {
        let due = held.filter { $0.value.due <= now }.sorted { ($0.value.due, $0.key) < ($1.value.due, $1.key) }
        for (token, _) in due { held[token] = nil }
        return due.map(\.value.payload)
    }
}
