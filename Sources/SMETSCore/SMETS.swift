/// The SMETS generation a Communications Hub is, or a device was pre-notified as.
public enum SMETSVersion: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case smets1 = "SMETS1"
    case smets2 = "SMETS2+"

    public var description: String { rawValue }

    /// Accepts `SMETS1`, `SMETS2`, `SMETS2+`, case-insensitively.
    public init?(text: String) {
        if let exact = SMETSVersion(rawValue: text) { self = exact; return }  // as stored: no case folding
        switch text.uppercased() {
        case "SMETS1", "1": self = .smets1
        case "SMETS2", "SMETS2+", "2", "2+": self = .smets2
        default: return nil
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = SMETSVersion(text: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "unknown SMETS version '\(text)'; use SMETS1 or SMETS2+")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// The SMETS mode a device works in now; numbered as the HAN link's WELCOME carries it.
public enum SMETSMode: UInt8, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case undetermined = 0
    case smets1 = 1
    case smets2 = 2

    public init(_ version: SMETSVersion) {
        switch version {
        case .smets1: self = .smets1
        case .smets2: self = .smets2
        }
    }

    /// The SMETS version of this mode, nil while undetermined.
    public var version: SMETSVersion? {
        switch self {
        case .undetermined: nil
        case .smets1: .smets1
        case .smets2: .smets2
        }
    }

    public var name: String { version?.rawValue ?? "undetermined" }
    public var description: String { name }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        if text == "undetermined" { self = .undetermined; return }
        guard let version = SMETSVersion(text: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "unknown SMETS mode '\(text)'; use undetermined, SMETS1 or SMETS2+")
        }
        self = SMETSMode(version)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}

/// MP202: the SMETS version of the Communications Hub a dual-mode PPMID joins decides its mode,
/// whatever the supplier pre-notified. Kept as the table the modification states, so that a change
/// to the rule is a change to one row.
public enum MP202 {
    public static func resolvedMode(preNotified: SMETSVersion, hub: SMETSVersion) -> SMETSMode {
        switch (preNotified, hub) {
        case (.smets1, .smets1): .smets1
        case (.smets1, .smets2): .smets2
        case (.smets2, .smets1): .smets1
        case (.smets2, .smets2): .smets2
        }
    }

    /// Requirement 7: OTA firmware goes only to dual-mode PPMIDs enrolled in a SMETS2+ system.
    public static func otaRefusal(mode: SMETSMode) -> String? {
        switch mode {
        case .smets2: nil
        case .smets1: "MP202 requirement 7: OTA firmware upgrades are not permitted to a dual-mode PPMID enrolled in a SMETS1 system"
        case .undetermined: "the device has not joined a Communications Hub, so its SMETS mode is undetermined"
        }
    }
}
