/// Checks a manufacturer's signature over an image. The core holds no cryptography: the daemon
/// and smetsctl pass one built on swift-crypto (ECDSA P-256 with SHA-256, raw r||s signatures).
public protocol SignatureVerifier: Sendable {
    /// Whether `signature` (64 bytes, raw r||s) is this key's signature of `message`.
    func isValidSignature(_ signature: [UInt8], of message: [UInt8]) -> Bool
}

/// The signing key a model's images are checked against.
public enum SigningKey: Sendable {
    /// The model names no key (`signingKey` absent): signatures are not checked.
    case none
    /// The model's key, loaded.
    case loaded(any SignatureVerifier)
    /// The model names a key that could not be loaded; every image fails the signature check.
    case unavailable(String)
}

/// What the firmware rules need to know about an image: the fields of its OTA header and the
/// signature, independent of the file form (the wire layer makes one from a parsed file).
public struct FirmwareCandidate: Sendable {
    public var manufacturerCode: UInt16
    public var imageType: UInt16
    public var fileVersion: FirmwareVersion
    /// Minimum and maximum hardware version, inclusive, when the header names them.
    public var hardwareVersions: (minimum: UInt16, maximum: UInt16)?
    /// The upgrade file destination of a device-specific file.
    public var destination: EUI64?
    /// The size of the whole file.
    public var fileSize: Int
    /// What the manufacturer signs: the OTA header as it travels, then the Manufacturer Image.
    public var signedContent: [UInt8]
    /// The 64-byte raw r||s signature, if the image carries one.
    public var signature: [UInt8]?

    public init(manufacturerCode: UInt16, imageType: UInt16, fileVersion: FirmwareVersion, hardwareVersions: (minimum: UInt16, maximum: UInt16)?,
                destination: EUI64?, fileSize: Int, signedContent: [UInt8], signature: [UInt8]?) {
        self.manufacturerCode = manufacturerCode; self.imageType = imageType; self.fileVersion = fileVersion
        self.hardwareVersions = hardwareVersions; self.destination = destination; self.fileSize = fileSize
        self.signedContent = signedContent; self.signature = signature
    }
}

/// The device an image is checked for. `device` is nil for an offline check against a model alone.
public struct FirmwareTarget: Sendable {
    public var model: DeviceModel
    public var device: EUI64?
    public var mode: SMETSMode
    /// The firmware the device really runs (not the presented version).
    public var currentFirmware: FirmwareVersion

    public init(model: DeviceModel, device: EUI64?, mode: SMETSMode, currentFirmware: FirmwareVersion) {
        self.model = model; self.device = device; self.mode = mode; self.currentFirmware = currentFirmware
    }
}

/// One rule's verdict on an image: a line of `smetsctl firmware check`.
public struct FirmwareCheck: Hashable, Sendable, CustomStringConvertible {
    public enum Outcome: String, Hashable, Sendable {
        case pass, fail
        /// The rule does not apply to this image or target; counts as a pass.
        case notApplicable = "n/a"
    }

    /// The rule, one of ``FirmwareRules/checkNames``.
    public var name: String
    public var outcome: Outcome
    public var reason: String

    public init(_ name: String, _ outcome: Outcome, _ reason: String) {
        self.name = name; self.outcome = outcome; self.reason = reason
    }

    public var passed: Bool { outcome != .fail }
    public var description: String { "\(name): \(outcome.rawValue): \(reason)" }
}

/// Every check of an image, and whether it may be installed.
public struct FirmwareVerdict: Hashable, Sendable {
    public var checks: [FirmwareCheck]
    public init(checks: [FirmwareCheck]) { self.checks = checks }
    public var accepted: Bool { checks.allSatisfy(\.passed) }
    public var failures: [FirmwareCheck] { checks.filter { !$0.passed } }
    /// The failures in one sentence, for events and errors.
    public var summary: String {
        accepted ? "accepted" : failures.map { "\($0.name): \($0.reason)" }.joined(separator: "; ")
    }
}

/// The firmware acceptance rules of a GB HAN device, as the hardware applies them: pure, one check
/// per rule, every check run (not stopping at the first failure) so that a report names everything
/// wrong at once. A device knows neither the CPL nor the SMETS system it is enrolled in: those are
/// the DCC's checks (SMETSDCC's `DCCRules.firmwareChecks`), made before an image reaches the hub.
public enum FirmwareRules {
    /// The checks, in the order they are reported. `format` is the parse of the file itself.
    public static let checkNames = [
        "format", "size", "manufacturer", "imageType", "hardwareVersion", "destination", "signature", "downgrade",
    ]

    /// The report of a file that could not be read at all: only the `format` line, failed.
    public static func unreadable(_ reason: String) -> FirmwareVerdict {
        FirmwareVerdict(checks: [FirmwareCheck("format", .fail, reason)])
    }

    /// Checks `image` as the device `target` would.
    ///
    /// - Parameters:
    ///   - format: a description of the file's form, for the `format` line (it was read).
    ///   - maxImageBytes: the size limit (`Settings.maxImageBytes`).
    ///   - key: the model's signing key. The signature covers the OTA header and the Manufacturer
    ///     Image (``FirmwareCandidate/signedContent``).
    public static func check(
        _ image: FirmwareCandidate, format: String, for target: FirmwareTarget, maxImageBytes: Int, key: SigningKey
    ) -> FirmwareVerdict {
        let model = target.model
        var checks: [FirmwareCheck] = [FirmwareCheck("format", .pass, format)]

        checks.append(image.fileSize <= maxImageBytes
            ? FirmwareCheck("size", .pass, "\(image.fileSize) bytes, within the limit of \(maxImageBytes)")
            : FirmwareCheck("size", .fail, "\(image.fileSize) bytes, over the limit of \(maxImageBytes) (maxImageBytes)"))

        let wanted = model.manufacturer.numericCode
        let code = hex4(image.manufacturerCode)
        if image.manufacturerCode == wanted {
            checks.append(FirmwareCheck("manufacturer", .pass, "\(code) is \(model.manufacturer.name)"))
        } else if image.manufacturerCode == 0xFFFF {
            // A wildcard image names no manufacturer; only a signature by the model's own key ties
            // it to the manufacturer, so a model without a key refuses it.
            if case .none = key {
                checks.append(FirmwareCheck("manufacturer", .fail, "wildcard manufacturer code FFFF, and model \(model.key) has no signing key to prove the image is \(model.manufacturer.name)'s"))
            } else {
                checks.append(FirmwareCheck("manufacturer", .pass, "wildcard manufacturer code FFFF, accepted because the signature must be \(model.manufacturer.name)'s"))
            }
        } else {
            checks.append(FirmwareCheck("manufacturer", .fail, "\(code) is not \(model.manufacturer.name)'s code \(hex4(wanted))"))
        }

        let type = hex4(image.imageType)
        if image.imageType == model.numericImageType {
            checks.append(FirmwareCheck("imageType", .pass, "\(type) is the image type of \(model.key)"))
        } else if image.imageType >= 0xFFC0 {
            checks.append(FirmwareCheck("imageType", .fail, "\(type) is a reserved image type (FFC0-FFFF); \(model.key) takes \(hex4(model.numericImageType))"))
        } else {
            checks.append(FirmwareCheck("imageType", .fail, "\(type) is not the image type \(hex4(model.numericImageType)) of \(model.key)"))
        }

        if let range = image.hardwareVersions {
            let within = range.minimum <= model.hardwareVersion && model.hardwareVersion <= range.maximum
            checks.append(within
                ? FirmwareCheck("hardwareVersion", .pass, "hardware version \(model.hardwareVersion) is within \(range.minimum)...\(range.maximum)")
                : FirmwareCheck("hardwareVersion", .fail, "hardware version \(model.hardwareVersion) is outside \(range.minimum)...\(range.maximum)"))
        } else {
            checks.append(FirmwareCheck("hardwareVersion", .notApplicable, "the image names no hardware versions"))
        }

        switch (image.destination, target.device) {
        case (nil, _):
            checks.append(FirmwareCheck("destination", .notApplicable, "not a device-specific image"))
        case let (destination?, device?):
            checks.append(destination == device
                ? FirmwareCheck("destination", .pass, "the image is for \(device)")
                : FirmwareCheck("destination", .fail, "the image is for \(destination), not \(device)"))
        case let (destination?, nil):
            checks.append(FirmwareCheck("destination", .notApplicable, "the image is for \(destination); no device given to compare"))
        }

        checks.append(signatureCheck(image, model: model, key: key))

        let new = image.fileVersion, current = target.currentFirmware
        if new > current {
            checks.append(FirmwareCheck("downgrade", .pass, "\(new.hex) is newer than \(current.hex)"))
        } else if model.downgradeAllowed {
            checks.append(FirmwareCheck("downgrade", .pass, "\(new.hex) is not newer than \(current.hex); model \(model.key) allows it"))
        } else {
            checks.append(FirmwareCheck("downgrade", .fail, "\(new.hex) is not newer than \(current.hex), and model \(model.key) does not allow downgrades"))
        }
        return FirmwareVerdict(checks: checks)
    }

    static func signatureCheck(_ image: FirmwareCandidate, model: DeviceModel, key: SigningKey) -> FirmwareCheck {
        switch key {
        case .none:
            return FirmwareCheck("signature", .notApplicable, image.signature == nil
                ? "model \(model.key) names no signing key, and the image is unsigned"
                : "model \(model.key) names no signing key; the signature is not checked")
        case .unavailable(let problem):
            return FirmwareCheck("signature", .fail, "the signing key of \(model.key) cannot be used: \(problem)")
        case .loaded(let verifier):
            guard let signature = image.signature else {
                return FirmwareCheck("signature", .fail, "the image is unsigned; model \(model.key) requires a signature by \(model.signingKey ?? "its key")")
            }
            guard signature.count == 64 else {
                return FirmwareCheck("signature", .fail, "the signature is \(signature.count) bytes, not 64 (raw r||s of ECDSA P-256)")
            }
            return verifier.isValidSignature(signature, of: image.signedContent)
                ? FirmwareCheck("signature", .pass, "ECDSA P-256 signature over the header and Manufacturer Image verifies with \(model.signingKey ?? "the model's key")")
                : FirmwareCheck("signature", .fail, "the signature does not verify with \(model.signingKey ?? "the model's key"): the image was altered or signed by another key")
        }
    }

    static func hex4(_ value: UInt16) -> String { upperHex(value, width: 4) }
}
