#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystemd

/// Tells the service manager about the daemon's state through the `sd_notify(3)` protocol.
///
/// Every method is a no-op returning `false` when the process was not started by systemd with a
/// notification socket (`NOTIFY_SOCKET` unset), so a daemon can call them unconditionally. The
/// environment is read afresh on each call and never unset, so the notifier works for the life of
/// the process and in any thread; with `NotifyAccess=main` only the main process (any of its
/// threads) is heard.
///
/// ```swift
/// let notifier = SystemdNotifier()
/// notifier.ready(status: "serving 12 devices")
/// ```
public struct SystemdNotifier: Sendable {
    /// Creates a notifier. It holds no state: all instances are interchangeable.
    public init() {}

    /// Whether the service manager listens for notifications (`NOTIFY_SOCKET` is set).
    public static var isAvailable: Bool {
        guard let value = getenv("NOTIFY_SOCKET") else { return false }
        return value.pointee != 0
    }

    /// Says startup (or a reload) is complete: `READY=1`, and `STATUS=` if given.
    ///
    /// With `Type=notify`, systemd keeps the unit in "activating" until this arrives, and ends a
    /// reload begun by ``reloading(status:)``.
    /// - Parameter status: a one-line, human-readable state shown by `systemctl status`.
    /// - Returns: whether the message was delivered.
    @discardableResult
    public func ready(status: String? = nil) -> Bool {
        var fields: [(String, String)] = [("READY", "1")]
        if let status { fields.append(("STATUS", status)) }
        return Self.deliver(fields)
    }

    /// Sets the free-form status line shown by `systemctl status` (`STATUS=`).
    /// - Returns: whether the message was delivered.
    @discardableResult
    public func status(_ text: String) -> Bool {
        Self.deliver([("STATUS", text)])
    }

    /// Feeds the service manager's watchdog (`WATCHDOG=1`).
    ///
    /// Call it every ``watchdogInterval()`` from the code whose liveness matters (the event loop),
    /// not from a dedicated timer thread that would keep ticking while the daemon hangs.
    /// - Returns: whether the message was delivered.
    @discardableResult
    public func watchdog() -> Bool {
        Self.deliver([("WATCHDOG", "1")])
    }

    /// Says a reload has begun: `RELOADING=1` with `MONOTONIC_USEC=` (now, on `CLOCK_MONOTONIC`,
    /// as systemd 253+ requires for `Type=notify-reload`) and `STATUS=` if given.
    ///
    /// Follow it with ``ready(status:)`` once the reload is done, whether it succeeded or not.
    /// - Returns: whether the message was delivered.
    @discardableResult
    public func reloading(status: String? = nil) -> Bool {
        var fields: [(String, String)] = [
            ("RELOADING", "1"),
            ("MONOTONIC_USEC", String(Self.monotonicMicroseconds())),
        ]
        if let status { fields.append(("STATUS", status)) }
        return Self.deliver(fields)
    }

    /// Says an orderly shutdown has begun (`STOPPING=1`, and `STATUS=` if given).
    /// - Returns: whether the message was delivered.
    @discardableResult
    public func stopping(status: String? = nil) -> Bool {
        var fields: [(String, String)] = [("STOPPING", "1")]
        if let status { fields.append(("STATUS", status)) }
        return Self.deliver(fields)
    }

    /// Asks for more time to finish starting, reloading or stopping (`EXTEND_TIMEOUT_USEC=`).
    /// - Parameter duration: how long from now the current phase may still take.
    /// - Returns: whether the message was delivered.
    @discardableResult
    public func extendTimeout(by duration: Duration) -> Bool {
        Self.deliver([("EXTEND_TIMEOUT_USEC", String(Self.microseconds(of: duration)))])
    }

    /// Sends arbitrary assignments in one datagram, in the canonical order of
    /// ``message(_:)`` (state changes such as `READY=1` first, then `STATUS=`, then the rest
    /// sorted by name).
    ///
    /// - Parameter assignments: variable names (such as `READY`, `STATUS`, `ERRNO`) and values.
    ///   A newline in a value would start a new assignment, so it is sent as a space.
    /// - Returns: whether the message was delivered.
    @discardableResult
    public func send(_ assignments: [String: String]) -> Bool {
        Self.deliver(Self.canonicalOrder(assignments))
    }

    /// The ping period for ``watchdog()``: half of the unit's `WatchdogSec=`, or `nil` when the
    /// service manager expects no pings (no watchdog configured, or not meant for this process).
    public static func watchdogInterval() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(clamping: usec / 2))
    }

    /// The notification text for `assignments`, exactly as ``send(_:)`` transmits it:
    /// `NAME=value` lines joined by newlines, in canonical order, newlines in values made spaces.
    public static func message(_ assignments: [String: String]) -> String {
        render(canonicalOrder(assignments))
    }

    // MARK: - Internals

    /// Names that change the unit's state come first so that, e.g., `READY=1` and the `STATUS=`
    /// describing it arrive in the order a reader expects.
    static let leadingNames = [
        "READY", "RELOADING", "STOPPING", "MONOTONIC_USEC", "STATUS", "ERRNO", "BUSERROR",
        "MAINPID", "WATCHDOG", "WATCHDOG_USEC", "EXTEND_TIMEOUT_USEC",
    ]

    static func canonicalOrder(_ assignments: [String: String]) -> [(String, String)] {
        var ordered: [(String, String)] = []
        for name in leadingNames {
            if let value = assignments[name] { ordered.append((name, value)) }
        }
        let rest = assignments.keys.filter { !leadingNames.contains($0) }.sorted()
        for name in rest { ordered.append((name, assignments[name]!)) }
        return ordered
    }

    static func render(_ fields: [(String, String)]) -> String {
        fields.map { name, value in
            let flat = value.replacing("\r\n", with: " ")
                .replacing("\n", with: " ")
                .replacing("\r", with: " ")
            return "\(name)=\(flat)"
        }.joined(separator: "\n")
    }

    static func deliver(_ fields: [(String, String)]) -> Bool {
        guard isAvailable else { return false }
        return sd_notify(0, render(fields)) > 0
    }

    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }

    static func microseconds(of duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        return UInt64(seconds) * 1_000_000 + UInt64(attoseconds / 1_000_000_000_000)
    }
}
