import SMETSRPC

/// How device objects and other results read on a terminal.
enum Format {
    /// A value as a table cell or list entry: strings bare, null as `-`, objects as `key value, …`.
    static func text(_ value: JSONValue?) -> String {
        switch value {
        case nil, .null?: return "-"
        case .string(let text)?: return text.isEmpty ? "-" : text
        case .bool(let flag)?: return flag ? "yes" : "no"
        case .array(let elements)?: return elements.isEmpty ? "-" : elements.map { text($0) }.joined(separator: ", ")
        case .object(let members)?:
            return members.isEmpty ? "-" : members.keys.sorted().map { "\($0) \(text(members[$0]))" }.joined(separator: ", ")
        case let other?: return other.serialized()
        }
    }

    /// The firmware cell: the version, and what the device presents when that differs.
    static func firmware(_ device: JSONValue) -> String {
        let actual = text(device["firmwareVersion"])
        if let presented = device["presentedFirmwareVersion"]?.stringValue, presented != actual {
            return "\(actual) (presents \(presented))"
        }
        return actual
    }

    static let deviceColumns = ["ID", "TYPE", "PREMISES", "MODEL", "MODE", "STATUS", "FIRMWARE"]

    static func deviceRow(_ device: JSONValue) -> [String] {
        [
            text(device["id"]), text(device["type"]), text(device["premises"]), text(device["model"]),
            text(device["mode"]), text(device["status"]), firmware(device),
        ]
    }

    static func deviceTable(_ devices: [JSONValue]) -> String {
        TextTable(headers: deviceColumns, rows: devices.map(deviceRow)).render(emphasiseHeader: Terminal.stylesStandardOutput)
    }

    /// The members of a device object in the order the API document lists them.
    private static let deviceFields: [(key: String, label: String)] = [
        ("id", "id"), ("type", "type"), ("premises", "premises"), ("model", "model"),
        ("manufacturer", "manufacturer"), ("manufacturerCode", "manufacturer code"), ("modelId", "model id"),
        ("hardwareVersion", "hardware version"), ("firmwareVersion", "firmware"),
        ("presentedFirmwareVersion", "presented firmware"), ("owner", "owner"), ("preNotified", "pre-notified"),
        ("mode", "mode"), ("status", "status"), ("hub", "hub"), ("region", "region"), ("smetsVersion", "SMETS version"),
    ]

    /// A device as labelled lines; members the document does not list follow under their own names,
    /// and `data` (from `devices.get`) as an indented block.
    static func deviceDetails(_ device: JSONValue) -> String {
        let members = device.objectValue ?? [:]
        var list = KeyValueList()
        for field in deviceFields where members[field.key] != nil || field.key == "hub" {
            list.add(field.label, text(members[field.key]))
        }
        let known = Set(deviceFields.map(\.key) + ["data", "supplier"])
        for key in members.keys.sorted() where !known.contains(key) { list.add(key, text(members[key])) }
        var output = list.render()
        // Nested objects as indented blocks: what the device holds, and its premises' supplier.
        for block in ["data", "supplier"] {
            if let members = members[block]?.objectValue, !members.isEmpty {
                output += block + "\n" + keyValues(members).render(indent: 2)
            }
        }
        return output
    }

    /// An object's members as a list, keys sorted.
    static func keyValues(_ members: [String: JSONValue]) -> KeyValueList {
        var list = KeyValueList()
        for key in members.keys.sorted() { list.add(key, text(members[key])) }
        return list
    }
}
