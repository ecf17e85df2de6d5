import Logging
import SMETSCore
import Synchronization

/// Every kind of event the daemon publishes: the `type` subscribers filter on and the journal's
/// EVENT= field. One name per happening, `area.happening`.
public enum EventType: String, Sendable, CaseIterable {
    case accessRefused = "access.refused"
    case assetTransferred = "asset.transferred"
    case clockChanged = "clock.changed"
    case clockDayEnded = "clock.dayEnded"
    case daemonReloaded = "daemon.reloaded"
    case deviceCreated = "device.created"
    case deviceJoined = "device.joined"
    case deviceLeft = "device.left"
    case devicePowerCycled = "device.powerCycled"
    case deviceRemoved = "device.removed"
    case deviceStatus = "device.status"
    case displaySettingsChanged = "display.settingsChanged"
    case faultApplied = "fault.applied"
    case duisDelivered = "duis.delivered"
    case duisDropped = "duis.dropped"
    case duisExchange = "duis.exchange"
    case firmwareAborted = "firmware.aborted"
    case firmwareActivated = "firmware.activated"
    case firmwareActivationFailed = "firmware.activationFailed"
    case firmwareDownloadStarted = "firmware.downloadStarted"
    case firmwareDownloaded = "firmware.downloaded"
    case firmwareIgnored = "firmware.ignored"
    case firmwareNoImage = "firmware.noImage"
    case firmwareNotified = "firmware.notified"
    case firmwareOffered = "firmware.offered"
    case firmwareProgress = "firmware.progress"
    case firmwareRefused = "firmware.refused"
    case firmwareRejected = "firmware.rejected"
    case firmwareScheduled = "firmware.scheduled"
    case firmwareUpgradeEnd = "firmware.upgradeEnd"
    case firmwareWaitForData = "firmware.waitForData"
    case firmwareWaiting = "firmware.waiting"
    case hanAttached = "han.attached"
    case hanFrame = "han.frame"
    case labGenerated = "lab.generated"
    case messageDisplayed = "message.displayed"
    case prepaymentDebtAccrued = "prepayment.debtAccrued"
    case prepaymentDebtRecovered = "prepayment.debtRecovered"
    case prepaymentToppedUp = "prepayment.toppedUp"
    case supplierChanged = "supplier.changed"
    case tenancyChanged = "tenancy.changed"
    case tenancyCleared = "tenancy.cleared"
    case tenancyScheduled = "tenancy.scheduled"
}

/// One value of an event's data: typed, not JSON. The control API shapes it as JSON at its edge
/// (ControlMethods+Events.swift); the log writes it as a field.
public enum EventValue: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case array([EventValue])
    case object([String: EventValue])
    case null

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }

    /// The value as a log field: a string as it is, anything else as compact JSON.
    var logText: String {
        if case .string(let text) = self { return text }
        return jsonText
    }

    private var jsonText: String {
        switch self {
        case .string(let text):
            "\"" + text.unicodeScalars.map { scalar -> String in
                switch scalar {
                case "\"": "\\\""
                case "\\": "\\\\"
                case _ where scalar.value < 0x20: "\\u" + upperHex(scalar.value, width: 4)
                default: String(scalar)
                }
            }.joined() + "\""
        case .int(let number): String(number)
        case .bool(let flag): String(flag)
        case .array(let values): "[" + values.map(\.jsonText).joined(separator: ",") + "]"
        case .object(let members): "{" + members.sorted { $0.key < $1.key }.map { EventValue.string($0.key).jsonText + ":" + $0.value.jsonText }.joined(separator: ",") + "}"
        case .null: "null"
        }
    }
}

/// Something that happened in the emulated system, pushed to `events.subscribe` clients and logged.
public struct DaemonEvent: Sendable {
    public var seq: Int64
    public var time: Timestamp
    public var type: String
    public var device: EUI64?
    public var data: [String: EventValue]
}

/// Fans events out to subscribers and to the log (one structured line or journald entry each).
public final class EventHub: Sendable {
    public typealias Sink = @Sendable (DaemonEvent) -> Void
    struct Subscriber { var types: Set<String>?; var sink: Sink }
    struct State { var seq: Int64 = 0; var nextID = 0; var subscribers: [Int: Subscriber] = [:] }

    private let state = Mutex(State())
    private let logger: Logger
    /// How many subscribers take `han.frame`, kept beside the lock: every HAN frame asks, twice a round trip.
    private let frameListeners = Atomic<Int>(0)

    public init(logger: Logger) { self.logger = logger }

    /// Subscribes `sink` to every event (or those of `types`); returns the id to unsubscribe with.
    public func subscribe(types: Set<String>?, sink: @escaping Sink) -> Int {
        state.withLock { state in
            state.nextID += 1
            state.subscribers[state.nextID] = Subscriber(types: types, sink: sink)
            countFrameListeners(state)
            return state.nextID
        }
    }

    public func unsubscribe(_ id: Int) {
        state.withLock { state in
            _ = state.subscribers.removeValue(forKey: id)
            countFrameListeners(state)
        }
    }

    /// Called under the lock, so the count follows the subscribers in their order.
    private func countFrameListeners(_ state: State) {
        frameListeners.store(state.subscribers.values.count { $0.types?.contains(EventType.hanFrame.rawValue) ?? true }, ordering: .relaxed)
    }

    /// Whether anyone listens for `type`: lets hot paths skip building events nobody reads.
    public func hasSubscribers(for type: EventType) -> Bool {
        if type == .hanFrame { return frameListeners.load(ordering: .relaxed) > 0 }
        return state.withLock { $0.subscribers.values.contains { $0.types?.contains(type.rawValue) ?? true } }
    }

    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Publishes an event. `log` false keeps chatty events (every HAN frame) out of the journal.
    public func publish(_ kind: EventType, device: EUI64? = nil, time: Timestamp, data: [String: EventValue] = [:],
                        level: Logger.Level = .info, message: String? = nil, log: Bool = true) {
        let type = kind.rawValue
        let (event, sinks) = state.withLock { state -> (DaemonEvent, [Sink]) in
            state.seq += 1
            let event = DaemonEvent(seq: state.seq, time: time, type: type, device: device, data: data)
            let sinks = state.subscribers.values.filter { $0.types?.contains(type) ?? true }.map(\.sink)
            return (event, sinks)
        }
        if log {
            var metadata: Logger.Metadata = ["event": .string(type), "virtual_time": .string(time.rfc3339)]
            if let device { metadata["device_id"] = .string(device.description) }
            for (key, value) in data {
                switch value {
                case .string(let text): metadata[key] = .string(text)
                case .int(let number): metadata[key] = .stringConvertible(number)
                case .bool(let flag): metadata[key] = .stringConvertible(flag)
                case .null: continue
                default: metadata[key] = .string(value.logText)
                }
            }
            logger.log(level: level, "\(message ?? type)", metadata: metadata)
        }
        for sink in sinks { sink(event) }
    }
}
