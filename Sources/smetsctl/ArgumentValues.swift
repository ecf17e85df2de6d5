import ArgumentParser
import SMETSCore

/// Transforms for option and argument values, so that a typo is a usage error that names the
/// accepted forms, not a round trip to the daemon.
enum ArgumentValues {
    @Sendable static func deviceID(_ text: String) throws -> EUI64 {
        guard let id = EUI64(text) else {
            throw ValidationError("'\(text)' is not a device ID; write an EUI-64 such as 00-DB-12-34-56-78-90-A1")
        }
        return id
    }

    @Sendable static func deviceType(_ text: String) throws -> DeviceType {
        guard let type = DeviceType(name: text) else {
            throw ValidationError("'\(text)' is not a device type; use one of \(DeviceType.allCases.map(\.name).joined(separator: ", "))")
        }
        return type
    }

    @Sendable static func status(_ text: String) throws -> InventoryStatus {
        guard let status = InventoryStatus(text: text) else {
            throw ValidationError("'\(text)' is not an inventory status; use one of \(InventoryStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return status
    }

    @Sendable static func mode(_ text: String) throws -> SMETSMode {
        if text.lowercased() == "undetermined" { return .undetermined }
        guard let version = SMETSVersion(text: text) else {
            throw ValidationError("'\(text)' is not a SMETS mode; use undetermined, SMETS1 or SMETS2+")
        }
        return SMETSMode(version)
    }

    @Sendable static func version(_ text: String) throws -> SMETSVersion {
        guard let version = SMETSVersion(text: text) else {
            throw ValidationError("'\(text)' is not a SMETS version; use SMETS1 or SMETS2+")
        }
        return version
    }

    @Sendable static func time(_ text: String) throws -> String {
        guard RFC3339.isValid(text) else {
            throw ValidationError("'\(text)' is not an RFC 3339 time; write it like 2027-01-01T00:00:00Z")
        }
        return text
    }

    @Sendable static func duration(_ text: String) throws -> Int64 {
        guard let seconds = DurationText.seconds(from: text) else {
            throw ValidationError("'\(text)' is not a duration; write 90s, 15m, 2h, 3d, 1h30m or plain seconds")
        }
        guard seconds > 0 else { throw ValidationError("the clock only advances: give a duration above zero") }
        return seconds
    }
}
