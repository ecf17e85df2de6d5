import SMETSCore

/// The three service paths of the DUIS HTTP interface and the Command Variants each takes (duis.md §1).
public enum DUISServicePath: String, Sendable, CaseIterable {
    case sendCommand = "/api/v1/serviceS"
    case transform = "/api/v1/serviceT"
    case nonDevice = "/api/v1/serviceD"

    public var commandVariants: Set<Int> {
        switch self {
        case .sendCommand: [1, 3, 5, 7]
        case .transform: [4]
        case .nonDevice: [2, 6, 8]
        }
    }
}

/// How a service request is future dated (duis.md §5).
public enum FutureDating: String, Sendable {
    /// The DCC holds the request until ExecutionDateTime.
    case dsp
    /// The device takes the time and raises 8F66/8F67 when it executes.
    case device
    /// The request has no ExecutionDateTime.
    case none
}

/// DUIS user roles (duis.md §6).
public enum DUISRole: String, Sendable, CaseIterable {
    case importSupplier = "IS", exportSupplier = "ES", gasSupplier = "GS", electricityDistributor = "ED"
    case gasTransporter = "GT", registeredSupplierAgent = "RSA", otherUser = "OU"
}

/// One service reference variant of smetsd's subset: its body element, whether it is critical, the
/// Command Variants the XSD's annotations allow, future dating, roles and the device types it targets.
public struct ServiceVariant: Sendable, Hashable {
    public var variant: String
    public var bodyElement: String
    public var critical: Bool
    public var commandVariants: Set<Int>
    public var futureDating: FutureDating
    public var roles: Set<DUISRole>
    /// The device types the target may be; nil for a non-device request (the target is the DCC).
    public var targetTypes: Set<DeviceType>?

    /// `8.7` for `8.7.1`; the variant itself when it has two fields.
    public var reference: String {
        let fields = variant.split(separator: ".")
        return fields.count > 2 ? fields.prefix(2).joined(separator: ".") : variant
    }

    public var isDeviceRequest: Bool { targetTypes != nil }

    static let all7: Set<DUISRole> = Set(DUISRole.allCases)
    static let suppliers: Set<DUISRole> = [.importSupplier, .gasSupplier]

    /// duis.md §6, row by row.
    public static let catalog: [ServiceVariant] = [
        ServiceVariant(variant: "11.1", bodyElement: "UpdateFirmware", critical: false, commandVariants: [8], futureDating: .none, roles: suppliers, targetTypes: nil),
        ServiceVariant(variant: "11.2", bodyElement: "ReadFirmwareVersion", critical: false, commandVariants: [1, 2, 3], futureDating: .dsp, roles: all7,
                       targetTypes: [.esme, .chf, .gsme, .ppmid, .hcalcs]),
        ServiceVariant(variant: "11.3", bodyElement: "ActivateFirmware", critical: true, commandVariants: [4, 5, 6, 7], futureDating: .device, roles: suppliers,
                       targetTypes: [.esme, .gsme, .chf]),
        ServiceVariant(variant: "11.4", bodyElement: "UpdatePPMIDFirmware", critical: false, commandVariants: [8], futureDating: .none, roles: suppliers, targetTypes: nil),
        ServiceVariant(variant: "8.7.1", bodyElement: "JoinServiceCritical", critical: true, commandVariants: [4, 5, 6, 7], futureDating: .none, roles: suppliers,
                       targetTypes: [.esme, .gsme, .hcalcs]),
        ServiceVariant(variant: "8.7.2", bodyElement: "JoinServiceNonCritical", critical: false, commandVariants: [1, 2, 3], futureDating: .none,
                       roles: suppliers.union([.otherUser]), targetTypes: [.esme, .gsme, .ppmid]),
        ServiceVariant(variant: "8.8.1", bodyElement: "UnjoinServiceCritical", critical: true, commandVariants: [4, 5, 6, 7], futureDating: .none, roles: suppliers,
                       targetTypes: [.esme]),
        ServiceVariant(variant: "8.8.2", bodyElement: "UnjoinServiceNonCritical", critical: false, commandVariants: [1, 2, 3], futureDating: .none,
                       roles: suppliers.union([.otherUser]), targetTypes: [.esme, .gsme, .ppmid]),
        ServiceVariant(variant: "8.9", bodyElement: "ReadDeviceLog", critical: false, commandVariants: [1, 2, 3], futureDating: .dsp,
                       roles: suppliers.union([.otherUser]), targetTypes: [.gsme, .esme, .ppmid, .hcalcs, .gpf, .chf]),
        ServiceVariant(variant: "8.11", bodyElement: "UpdateHANDeviceLog", critical: false, commandVariants: [1, 2, 3], futureDating: .dsp,
                       roles: suppliers.union([.otherUser]), targetTypes: [.chf]),
        ServiceVariant(variant: "8.13", bodyElement: "ReturnLocalCommandResponse", critical: false, commandVariants: [8], futureDating: .none, roles: suppliers, targetTypes: nil),
        ServiceVariant(variant: "3.2", bodyElement: "RestrictAccessForChangeOfTenancy", critical: false, commandVariants: [1, 2, 3], futureDating: .dsp, roles: suppliers,
                       targetTypes: [.esme, .gpf]),
        ServiceVariant(variant: "3.4", bodyElement: "UpdateSupplierName", critical: false, commandVariants: [1, 2, 3], futureDating: .dsp, roles: suppliers,
                       targetTypes: [.esme, .gsme]),
        ServiceVariant(variant: "6.23", bodyElement: "UpdateSecurityCredentialsCoS", critical: false, commandVariants: [1, 2, 3], futureDating: .dsp, roles: suppliers,
                       targetTypes: [.esme, .gsme]),
        ServiceVariant(variant: "2.2", bodyElement: "TopUpDevice", critical: false, commandVariants: [1, 2, 3], futureDating: .none, roles: suppliers,
                       targetTypes: [.esme, .gsme]),
        ServiceVariant(variant: "4.1.1", bodyElement: "ReadInstantaneousImportRegisters", critical: false, commandVariants: [1, 2, 3], futureDating: .dsp,
                       roles: suppliers.union([.electricityDistributor, .gasTransporter]), targetTypes: [.esme, .gsme, .gpf]),
        ServiceVariant(variant: "8.2", bodyElement: "ReadInventory", critical: false, commandVariants: [8], futureDating: .none, roles: all7, targetTypes: nil),
        ServiceVariant(variant: "12.2", bodyElement: "DevicePrenotification", critical: false, commandVariants: [8], futureDating: .none, roles: all7, targetTypes: nil),
    ]

    static let byVariant: [String: ServiceVariant] = Dictionary(uniqueKeysWithValues: catalog.map { ($0.variant, $0) })

    public static func named(_ variant: String) -> ServiceVariant? { byVariant[variant] }
}
