/// A caller's role, from its peer credentials and the access configuration.
public enum Role: Hashable, Sendable, CustomStringConvertible {
    /// The lab operator: every method.
    case admin
    /// A test rig: the HAN link and the device-level methods.
    case rig
    /// A Meter Asset Provider: the asset data of the devices it owns.
    case map(String)
    /// A Device Manufacturer: the asset data of the devices it made (4-hex-digit manufacturer ID).
    case manufacturer(String)
    /// Nobody we know: public methods only.
    case anonymous

    /// Parses `admin`, `rig`, `map:MAP-ALPHA`, `manufacturer:1234`.
    public init?(text: String) {
        switch text {
        case "admin": self = .admin
        case "rig": self = .rig
        default:
            if text.hasPrefix("map:"), text.count > 4 { self = .map(String(text.dropFirst(4))) }
            else if text.hasPrefix("manufacturer:"), text.count == 17, UInt16(text.dropFirst(13), radix: 16) != nil {
                self = .manufacturer(text.dropFirst(13).uppercased())
            } else { return nil }
        }
    }

    public var description: String {
        switch self {
        case .admin: "admin"
        case .rig: "rig"
        case .map(let id): "map:\(id)"
        case .manufacturer(let code): "manufacturer:\(code)"
        case .anonymous: "anonymous"
        }
    }

    /// The role's name without its identity, for refusals ("the map role may not ...").
    public var kind: String {
        switch self {
        case .admin: "admin"
        case .rig: "rig"
        case .map: "map"
        case .manufacturer: "manufacturer"
        case .anonymous: "anonymous"
        }
    }
}

/// `devices/access.json`: who is who. Keys are `uid:N`, `gid:N`, `user:NAME` or `group:NAME`;
/// values are roles. A uid entry wins over a gid entry. Reloaded with SIGHUP.
public struct AccessConfiguration: Sendable, Codable, Hashable {
    public var roles: [String: String] = [:]
    public init(roles: [String: String] = [:]) { self.roles = roles }

    public func problems() -> [String] {
        roles.sorted { $0.key < $1.key }.compactMap { key, value in
            let prefixes = ["uid:", "gid:", "user:", "group:"]
            guard prefixes.contains(where: { key.hasPrefix($0) }) else { return "roles.\(key): keys are uid:N, gid:N, user:NAME or group:NAME" }
            return Role(text: value) == nil ? "roles.\(key): '\(value)' is not a role; use admin, rig, map:ID or manufacturer:CODE (4 hex digits)" : nil
        }
    }
}
