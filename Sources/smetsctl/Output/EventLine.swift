import SMETSRPC

/// Events as lines: `TIME TYPE DEVICE key=value…`, `-` for what an event lacks.
enum EventLine {
    static func render(_ event: JSONValue) -> String {
        var fields = [Format.text(event["time"]), Format.text(event["type"]), Format.text(event["device"])]
        switch event["data"] {
        case .object(let members)?:
            for key in members.keys.sorted() { fields.append("\(key)=\(value(members[key]!))") }
        case nil, .null?:
            break
        case let other?:
            fields.append("data=\(value(other))")
        }
        return fields.joined(separator: " ")
    }

    /// A value after `key=`: a plain string bare, anything that would not survive `split(" ")` as JSON.
    static func value(_ value: JSONValue) -> String {
        if case .string(let text) = value, !text.isEmpty,
           !text.contains(where: { $0.isWhitespace || $0 == "\"" || $0 == "=" || $0 == "\\" }) {
            return text
        }
        return value.serialized()
    }
}
