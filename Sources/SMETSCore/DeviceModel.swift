/// A device model as its manufacturer describes it: the identity it presents and what it keeps.
public struct DeviceModel: Hashable, Sendable, Codable {
    public struct Manufacturer: Hashable, Sendable, Codable {
        /// The 4-hex-digit manufacturer ID of the CPL; also the ZCL manufacturer code.
        public var code: String
        public var name: String
        public init(code: String, name: String) { self.code = code; self.name = name }
        public var numericCode: UInt16 { UInt16(code, radix: 16) ?? 0 }
    }

    /// The model's key: the file name under `devices/models/` without `.json`.
    public var key: String
    public var type: DeviceType
    public var manufacturer: Manufacturer
    /// The 8-hex-digit model ID of the CPL.
    public var modelId: String
    public var modelName: String
    public var hardwareVersion: UInt16
    /// The firmware a new device of this model runs.
    public var firmwareVersion: FirmwareVersion
    /// The OTA image type (4 hex digits) the manufacturer's images for this model carry.
    public var otaImageType: String
    /// The SMETS versions the model can work in; a dual-mode PPMID lists both.
    public var smetsVersions: [SMETSVersion]
    /// The manufacturer's public signing key (PEM, P-256), relative to the devices folder.
    public var signingKey: String?
    /// What the device keeps for the occupant (displays only).
    public var keeps: [DataCategory]
    /// What it clears at a Change of Tenancy, of what it keeps; nil: everything it keeps. What a
    /// device adds beyond SMETS (top-up history, debt recovery) is a matter for the supplier and the
    /// manufacturer (SECMP0056), so a model may keep it and still not clear it.
    public var clears: [DataCategory]?
    /// The technical specification the device was built to, e.g. `IHDTS v5.0` or `PPMIDTS v4.2`:
    /// Change of Tenancy clearing came with version 5.0 (SECMP0056, the implementation table), so a
    /// display built to an earlier one ignores PublishChangeOfTenancy. Nil: the current version.
    public var technicalSpecification: String?
    /// Whether the device has the OTA Upgrade cluster. IHD firmware cannot be upgraded and displays
    /// already in the field lack OTA (SECMP0056, the table's footnotes); nil: PPMIDs and hubs do, IHDs do not.
    public var ota: Bool?
    public var downgradeAllowed: Bool
    /// The largest Image Block Response data size the device asks for.
    public var maxImageBlockBytes: Int
    /// ZCL Basic PowerSource: 0x01 mains single phase, 0x03 battery.
    public var powerSource: UInt8
    public var dateCode: String

    public init(
        key: String, type: DeviceType, manufacturer: Manufacturer, modelId: String, modelName: String,
        hardwareVersion: UInt16, firmwareVersion: FirmwareVersion, otaImageType: String,
        smetsVersions: [SMETSVersion], signingKey: String? = nil, keeps: [DataCategory] = [],
        downgradeAllowed: Bool = false, maxImageBlockBytes: Int = 64, powerSource: UInt8 = 1, dateCode: String = "",
        clears: [DataCategory]? = nil, technicalSpecification: String? = nil, ota: Bool? = nil
    ) {
        self.clears = clears; self.technicalSpecification = technicalSpecification; self.ota = ota
        self.key = key; self.type = type; self.manufacturer = manufacturer; self.modelId = modelId
        self.modelName = modelName; self.hardwareVersion = hardwareVersion; self.firmwareVersion = firmwareVersion
        self.otaImageType = otaImageType; self.smetsVersions = smetsVersions; self.signingKey = signingKey
        self.keeps = keeps; self.downgradeAllowed = downgradeAllowed; self.maxImageBlockBytes = maxImageBlockBytes
        self.powerSource = powerSource; self.dateCode = dateCode
    }

    enum CodingKeys: String, CodingKey {
        case key, type, manufacturer, modelId, modelName, hardwareVersion, firmwareVersion, otaImageType
        case smetsVersions, signingKey, keeps, downgradeAllowed, maxImageBlockBytes, powerSource, dateCode
        case clears, technicalSpecification, ota
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        key = try c.decodeIfPresent(String.self, forKey: .key) ?? ""
        type = try c.decode(DeviceType.self, forKey: .type)
        manufacturer = try c.decode(Manufacturer.self, forKey: .manufacturer)
        modelId = try c.decode(String.self, forKey: .modelId)
        modelName = try c.decode(String.self, forKey: .modelName)
        hardwareVersion = try c.decode(UInt16.self, forKey: .hardwareVersion)
        firmwareVersion = try c.decode(FirmwareVersion.self, forKey: .firmwareVersion)
        otaImageType = try c.decode(String.self, forKey: .otaImageType)
        smetsVersions = try c.decode([SMETSVersion].self, forKey: .smetsVersions)
        signingKey = try c.decodeIfPresent(String.self, forKey: .signingKey)
        keeps = try c.decodeIfPresent([DataCategory].self, forKey: .keeps) ?? []
        downgradeAllowed = try c.decodeIfPresent(Bool.self, forKey: .downgradeAllowed) ?? false
        maxImageBlockBytes = try c.decodeIfPresent(Int.self, forKey: .maxImageBlockBytes) ?? 64
        powerSource = try c.decodeIfPresent(UInt8.self, forKey: .powerSource) ?? 1
        dateCode = try c.decodeIfPresent(String.self, forKey: .dateCode) ?? ""
        clears = try c.decodeIfPresent([DataCategory].self, forKey: .clears)
        technicalSpecification = try c.decodeIfPresent(String.self, forKey: .technicalSpecification)
        ota = try c.decodeIfPresent(Bool.self, forKey: .ota)
    }

    /// A dual-mode ("bilingual") PPMID (MP202): a PPMID model that works in both SMETS versions. Only these
    /// have the interim regime's fictitious SMETS1 rows; a meter or IHD listing both versions is not one.
    public var isDualMode: Bool { type == .ppmid && smetsVersions.contains(.smets1) && smetsVersions.contains(.smets2) }
    public var numericImageType: UInt16 { UInt16(otaImageType, radix: 16) ?? 0 }
    public var keepsSet: Set<DataCategory> { Set(keeps) }

    /// Whether the device has the OTA Upgrade cluster (see ``ota``).
    public var hasOTA: Bool { ota ?? (type != .ihd) }

    /// The version of ``technicalSpecification`` as (major, minor), nil when there is none or it
    /// cannot be read (then the model is taken to be current).
    public var specificationVersion: (major: Int, minor: Int)? {
        guard let text = technicalSpecification, let v = text.split(separator: " ").last.map({ $0.drop { $0 == "v" || $0 == "V" } }) else { return nil }
        let parts = v.split(separator: ".")
        guard let major = parts.first.flatMap({ Int($0) }) else { return nil }
        return (major, parts.count > 1 ? Int(parts[1]) ?? 0 : 0)
    }

    /// Whether the device acts on PublishChangeOfTenancy: displays built to IHDTS / PPMIDTS v5.0 or
    /// later (SECMP0056); earlier ones ignore it.
    public var handlesChangeOfTenancy: Bool {
        guard type.isDisplay else { return false }
        guard let version = specificationVersion else { return true }
        return version.major >= 5
    }

    /// What the device clears at a Change of Tenancy, of what it keeps.
    public var clearsSet: Set<DataCategory> {
        guard handlesChangeOfTenancy else { return [] }
        return clears.map(Set.init)?.intersection(keepsSet) ?? keepsSet
    }

    /// Problems a loaded model has, each a sentence naming the key and the fix.
    public func problems() -> [String] {
        var found: [String] = []
        if manufacturer.code.count != 4 || UInt16(manufacturer.code, radix: 16) == nil {
            found.append("manufacturer.code: '\(manufacturer.code)' must be 4 hex digits, e.g. 1234")
        }
        if modelId.count != 8 || UInt32(modelId, radix: 16) == nil {
            found.append("modelId: '\(modelId)' must be 8 hex digits, e.g. 0000A001")
        }
        if otaImageType.count != 4 || UInt16(otaImageType, radix: 16) == nil {
            found.append("otaImageType: '\(otaImageType)' must be 4 hex digits, e.g. 0001")
        }
        if smetsVersions.isEmpty { found.append("smetsVersions: list at least one of SMETS1, SMETS2+") }
        if !(1...255).contains(maxImageBlockBytes) { found.append("maxImageBlockBytes: must be 1...255, the ZCL data size field is a u8") }
        if !type.isDisplay && !keeps.isEmpty { found.append("keeps: only PPMID and IHD models keep occupant data; remove it") }
        if let clears, !Set(clears).isSubset(of: keepsSet) {
            found.append("clears: \(Set(clears).subtracting(keepsSet).map(\.rawValue).sorted().joined(separator: ", ")) not in keeps; a device clears only what it keeps")
        }
        if let spec = technicalSpecification, specificationVersion == nil {
            found.append("technicalSpecification: '\(spec)' must end in a version, e.g. IHDTS v5.0")
        }
        if smetsVersions.count > 1 && type != .ppmid {
            found.append("smetsVersions: only PPMIDs are dual-mode (SEC Appendix Z 3.13); a \(type) model lists one of SMETS1, SMETS2+ (make a model per version)")
        }
        if ota == true && type == .ihd {
            found.append("ota: IHD firmware upgrades are not possible (SECMP0056); remove it")
        }
        return found
    }
}
