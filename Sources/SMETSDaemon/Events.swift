import Logging
import SMETSCore
import SMETSRPC
import Synchronization

/// Something that happened in the emulated system, pushed to `events.subscribe` clients and logged.
public struct DaemonEvent: Sendable {
    public var seq: Int64
    public var time: Timestamp
    public var type: String
    public var device: EUI64?
    public var data: [String: JSONValue]

    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "seq": .int(seq), "time": .string(time.rfc3339), "type": .string(type), "data": .object(data),
        ]
        object["device"] = device.map { .string($0.description) } ?? .null
        return .object(object)
    }
}

/// Fans events out to subscribers and to the log (one structured line or journald entry each).
public final class EventHub: Sendable {
    public typealias Sink = @Sendable (DaemonEvent) -> Void
    struct Subscriber { var types: Set<String>?; var sink: Sink }
    struct State { var seq: Int64 = 0; var nextID = 0; var subscribers: [Int: Subscriber] = [:] }

    private let state = Mutex(State())
    private let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    /// Subscribes `sink` to every event (or those of `types`); returns the id to unsubscribe with.
    public func subscribe(types: Set<String>?, sink: @escaping Sink) -> Int {
        state.withLock { state in
            state.nextID += 1
            state.subscribers[state.nextID] = Subscriber(types: types, sink: sink)
            return state.nextID
        }
    }

    public func unsubscribe(_ id: Int) { state.withLock { _ = $0.subscribers.removeValue(forKey: id) } }

    /// Whether anyone listens for `type`: lets hot paths skip building events nobody reads.
    public func hasSubscribers(for type: String) -> Bool {
        state.withLock { $0.subscribers.values.contains { $0.types?.contains(type) ?? true } }
    }

    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Publishes an event. `log` false keeps chatty events (every HAN frame) out of the journal.
    public func publish(_ type: String, device: EUI64? = nil, time: Timestamp, data: [String: JSONValue] = [:],
                        level: Logger.Level = .info, message: String? = nil, log: Bool = true) {
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
                default: metadata[key] = .string(value.serialized())
                }
            }
            logger.log(level: level, "\(message ?? type)", metadata: metadata)
        }
        for sink in sinks { sink(event) }
    }
}
