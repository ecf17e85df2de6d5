/// A device's status in the Smart Metering Inventory.
public enum InventoryStatus: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case pending = "Pending"
    case whitelisted = "Whitelisted"
    case installedNotCommissioned = "InstalledNotCommissioned"
    case commissioned = "Commissioned"
    case decommissioned = "Decommissioned"
    case withdrawn = "Withdrawn"
    case suspended = "Suspended"
    case recovery = "Recovery"
    case recovered = "Recovered"
    case notApplicable = "NotApplicable"

    public var description: String { rawValue }

    public init?(text: String) {
        // The exact spelling first: the store holds it for every device, read at every start.
        if let exact = InventoryStatus(rawValue: text) { self = exact; return }
        let folded = text.lowercased()
        guard let match = InventoryStatus.allCases.first(where: { $0.rawValue.lowercased() == folded }) else { return nil }
        self = match
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = InventoryStatus(text: text) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "unknown inventory status '\(text)'; use one of \(InventoryStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// The Communications Service Provider region a hub sits in.
public enum CSPRegion: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case north = "North"
    case central = "Central"
    case south = "South"

    public var description: String { rawValue }

    public init?(text: String) {
        if let exact = CSPRegion(rawValue: text) { self = exact; return }
        let folded = text.lowercased()
        guard let match = CSPRegion.allCases.first(where: { $0.rawValue.lowercased() == folded }) else { return nil }
        self = match
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = CSPRegion(text: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "unknown CSP region '\(text)'; use North, Central or South")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
