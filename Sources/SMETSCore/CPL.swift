/// Which CPL regime a lab follows for dual-mode PPMIDs.
public enum CPLRegime: String, Sendable, Codable, CaseIterable {
    /// MP202: both rows carry the real firmware version and differ by SMETS version.
    case mp202
    /// The DCC's tactical interim solution: the SMETS1 row carries a fictitious firmware version.
    case interim
}

/// One row of the Central Products List.
public struct CPLEntry: Hashable, Sendable {
    public var manufacturerId: String
    public var modelId: String
    public var hardwareVersion: UInt16
    public var firmwareVersion: FirmwareVersion
    public var smetsVersion: SMETSVersion
    public var gbcsVersion: String
    public var deviceType: DeviceType
    /// Under the interim regime, the real firmware version this fictitious SMETS1 row stands for.
    public var fictitiousFor: FirmwareVersion?

    /// What identifies a row: two rows with the same key are duplicates.
    public struct Key: Hashable, Sendable {
        var manufacturerId: String, modelId: String, hardwareVersion: UInt16, firmwareVersion: FirmwareVersion
        var deviceType: DeviceType, smetsVersion: SMETSVersion
    }

    public var key: Key {
        Key(manufacturerId: manufacturerId, modelId: modelId, hardwareVersion: hardwareVersion, firmwareVersion: firmwareVersion,
            deviceType: deviceType, smetsVersion: smetsVersion)
    }

    public init(manufacturerId: String, modelId: String, hardwareVersion: UInt16, firmwareVersion: FirmwareVersion,
                smetsVersion: SMETSVersion, gbcsVersion: String, deviceType: DeviceType, fictitiousFor: FirmwareVersion? = nil) {
        self.manufacturerId = manufacturerId.uppercased(); self.modelId = modelId.uppercased()
        self.hardwareVersion = hardwareVersion; self.firmwareVersion = firmwareVersion
        self.smetsVersion = smetsVersion; self.gbcsVersion = gbcsVersion; self.deviceType = deviceType
        self.fictitiousFor = fictitiousFor
    }
}

public struct CPLParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public var line: Int
    public var message: String
    public var description: String { "line \(line): \(message)" }
}

/// The Central Products List: the identities a device may present and be commissioned with.
public struct CPL: Hashable, Sendable {
    public private(set) var entries: [CPLEntry]

    public init(entries: [CPLEntry]) { self.entries = entries }

    public static let header = "manufacturer_id,model_id,hardware_version,firmware_version,smets_chts_version,gbcs_version,device_type,fictitious_for"

    /// Parses `cpl.csv` (the header above, then one row per entry; `#` lines and blank lines ignored).
    public static func parse(csv: String) throws(CPLParseError) -> CPL {
        var entries: [CPLEntry] = []
        var lineOf: [CPLEntry.Key: Int] = [:]
        var sawHeader = false
        // "\r\n" is one Character in Swift, so CRLF lines must be split on it explicitly.
        for (index, rawLine) in csv.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let lineNumber = index + 1
            let line = rawLine.trimmedOfBlanks
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmedOfBlanks }
            if !sawHeader {
                guard fields.joined(separator: ",") == header else {
                    throw CPLParseError(line: lineNumber, message: "the first row must be the header: \(header)")
                }
                sawHeader = true
                continue
            }
            guard fields.count == 8 else {
                throw CPLParseError(line: lineNumber, message: "expected 8 fields, found \(fields.count)")
            }
            guard fields[0].count == 4, UInt16(fields[0], radix: 16) != nil else {
                throw CPLParseError(line: lineNumber, message: "manufacturer_id '\(fields[0])' must be 4 hex digits")
            }
            guard fields[1].count == 8, UInt32(fields[1], radix: 16) != nil else {
                throw CPLParseError(line: lineNumber, message: "model_id '\(fields[1])' must be 8 hex digits")
            }
            guard let hardware = UInt16(fields[2]) else {
                throw CPLParseError(line: lineNumber, message: "hardware_version '\(fields[2])' must be a number 0...65535")
            }
            guard fields[3].count == 8, let firmware = FirmwareVersion(hex: fields[3]) else {
                throw CPLParseError(line: lineNumber, message: "firmware_version '\(fields[3])' must be 8 hex digits")
            }
            guard let smets = SMETSVersion(text: fields[4]) else {
                throw CPLParseError(line: lineNumber, message: "smets_chts_version '\(fields[4])' must be SMETS1 or SMETS2+")
            }
            guard let type = DeviceType(name: fields[6]) else {
                throw CPLParseError(line: lineNumber, message: "device_type '\(fields[6])' is not a device type")
            }
            var fictitiousFor: FirmwareVersion?
            if !fields[7].isEmpty {
                guard fields[7].count == 8, let real = FirmwareVersion(hex: fields[7]), smets == .smets1 else {
                    throw CPLParseError(line: lineNumber, message: "fictitious_for '\(fields[7])' must be 8 hex digits on a SMETS1 row")
                }
                fictitiousFor = real
            }
            let entry = CPLEntry(manufacturerId: fields[0], modelId: fields[1], hardwareVersion: hardware,
                                 firmwareVersion: firmware, smetsVersion: smets, gbcsVersion: fields[5],
                                 deviceType: type, fictitiousFor: fictitiousFor)
            if let earlier = lineOf[entry.key] {
                throw CPLParseError(line: lineNumber, message: "duplicate of line \(earlier): the same manufacturer, model, hardware version, "
                    + "firmware version, device type and SMETS version; a CPL row is identified by all six")
            }
            lineOf[entry.key] = lineNumber
            entries.append(entry)
        }
        guard sawHeader else { throw CPLParseError(line: 1, message: "empty CPL; the first row must be the header: \(header)") }
        // SEC Appendix Z 3.13(b): a fictitious version must differ from every real version of the model,
        // or the inventory could not tell them apart.
        for entry in entries where entry.fictitiousFor != nil {
            let clash = entries.first {
                $0.fictitiousFor == nil && $0.manufacturerId == entry.manufacturerId && $0.modelId == entry.modelId
                    && $0.firmwareVersion == entry.firmwareVersion
            }
            if let clash {
                throw CPLParseError(line: lineOf[entry.key] ?? 0, message: "fictitious firmware version \(entry.firmwareVersion.hex) is also a real "
                    + "version of model \(entry.manufacturerId)/\(entry.modelId) (line \(lineOf[clash.key] ?? 0)); a fictitious version must differ "
                    + "from every real one (SEC Appendix Z 3.13(b))")
            }
        }
        // SEC Appendix Z 3.13: only PPMIDs are dual-mode; any other model has rows for one SMETS version.
        var versionsOf: [String: (version: SMETSVersion, line: Int)] = [:]
        for entry in entries where entry.deviceType != .ppmid {
            let model = "\(entry.manufacturerId)/\(entry.modelId)/\(entry.deviceType.name)"
            let line = lineOf[entry.key] ?? 0
            if let seen = versionsOf[model], seen.version != entry.smetsVersion {
                throw CPLParseError(line: line, message: "\(entry.deviceType) model \(entry.manufacturerId)/\(entry.modelId) has \(seen.version) (line \(seen.line)) "
                    + "and \(entry.smetsVersion) rows; only PPMIDs are dual-mode (SEC Appendix Z 3.13): give the other version a model of its own")
            }
            versionsOf[model] = versionsOf[model] ?? (entry.smetsVersion, line)
        }
        return CPL(entries: entries)
    }

    /// The firmware version a device of `model` running `firmware` presents in `mode`.
    ///
    /// Under MP202 it is the real version in both modes. Under the interim regime a SMETS1-mode
    /// dual-mode PPMID presents the fictitious version of the SMETS1 row that stands for its real one.
    public func presentedFirmware(model: DeviceModel, firmware: FirmwareVersion, mode: SMETSMode, regime: CPLRegime) -> FirmwareVersion {
        guard regime == .interim, mode == .smets1, model.isDualMode else { return firmware }
        let row = entries.first {
            $0.manufacturerId == model.manufacturer.code.uppercased() && $0.modelId == model.modelId.uppercased()
                && $0.deviceType == model.type && $0.smetsVersion == .smets1 && $0.fictitiousFor == firmware
        }
        return row?.firmwareVersion ?? firmware
    }

    /// Whether the CPL lists `model` with `presented` firmware for the SMETS version of `mode`,
    /// and under the rows `regime` uses (fictitious rows belong to the interim regime only).
    public func lists(model: DeviceModel, presented: FirmwareVersion, mode: SMETSMode, regime: CPLRegime) -> Bool {
        guard let version = mode.version else { return false }
        let wantsFictitious = regime == .interim && model.isDualMode && version == .smets1
        return entries.contains {
            $0.manufacturerId == model.manufacturer.code.uppercased() && $0.modelId == model.modelId.uppercased()
                && $0.hardwareVersion == model.hardwareVersion && $0.firmwareVersion == presented
                && $0.deviceType == model.type && $0.smetsVersion == version
                && ($0.fictitiousFor != nil) == wantsFictitious
        }
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and carriage returns.
    var trimmedOfBlanks: String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !blank($0) }), let last = lastIndex(where: { !blank($0) }) else { return "" }
        return String(self[first...last])
    }
}
