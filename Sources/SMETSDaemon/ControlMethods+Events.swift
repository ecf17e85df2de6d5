import SMETSCore
import SMETSRPC

// Events as the control API shows them: the engine publishes typed values, shaped as JSON here.

extension EventValue {
    var json: JSONValue {
        switch self {
        case .string(let text): .string(text)
        case .int(let number): .int(number)
        case .bool(let flag): .bool(flag)
        case .array(let values): .array(values.map(\.json))
        case .object(let members): .object(members.mapValues(\.json))
        case .null: .null
        }
    }
}

extension DaemonEvent {
    /// The `params` of an `event` notification.
    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "seq": .int(seq), "time": .string(time.rfc3339), "type": .string(type), "data": .object(data.mapValues(\.json)),
        ]
        object["device"] = device.map { .string($0.description) } ?? .null
        return .object(object)
    }
}
