/// A device's type, numbered as GBCS numbers it (and as the HAN link's WELCOME carries it).
public enum DeviceType: UInt8, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case gsme = 0
    case esme = 1
    case chf = 2
    case gpf = 3
    case hcalcs = 4
    case ppmid = 5
    /// A Type 2 device: an IHD or a CAD.
    case ihd = 6

    /// The name the lab files, the API and the CLI use.
    public var name: String {
        switch self {
        case .gsme: "GSME"
        case .esme: "ESME"
        case .chf: "CHF"
        case .gpf: "GPF"
        case .hcalcs: "HCALCS"
        case .ppmid: "PPMID"
        case .ihd: "IHD"
        }
    }

    public init?(name: String) {
        guard let match = DeviceType.allCases.first(where: { $0.name == name.uppercased() }) else { return nil }
        self = match
    }

    public var description: String { name }

    /// PPMIDs and IHDs: they keep what they display and clear it on Change of Tenancy.
    public var isDisplay: Bool { self == .ppmid || self == .ihd }

    /// ESMEs and GPFs serve Metering, Prepayment and Messaging to the HAN devices.
    public var isMeterSide: Bool { self == .esme || self == .gpf }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = DeviceType(name: text) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "unknown device type '\(text)'; use one of \(DeviceType.allCases.map(\.name).joined(separator: ", "))")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}
