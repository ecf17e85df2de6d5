/// The control API's application error codes (docs/control-api.md, "Errors").
///
/// Each has a stable number, sent as the JSON-RPC error `code`, and a stable snake_case
/// ``reason``, sent as `data.reason`; scripts may rely on both.
public enum ApplicationErrorCode: Int, CaseIterable, Sendable, Hashable, CustomStringConvertible {
    /// No device with that ID.
    case deviceNotFound = 1001
    /// `devices.create` with an ID in use.
    case deviceExists = 1002
    /// No premises with that ID.
    case premisesNotFound = 1003
    /// No device model with that key.
    case modelNotFound = 1004
    /// `han.join` names a hub that is not a CHF.
    case notAHub = 1005
    /// The device's type or inventory status does not allow joining.
    case notJoinable = 1006
    /// `han.leave` of a device that is on no hub.
    case notJoined = 1007
    /// The request conflicts with the device's state.
    case invalidState = 1008
    /// A time that cannot be represented, or an advance that is not positive.
    case clockInvalid = 1009
    /// A configured limit would be exceeded.
    case limitExceeded = 1010
    /// The caller's role may not call this method.
    case notAuthorised = 1100
    /// The state folder cannot take a write now (full, read-only, I/O errors); reads still work and
    /// writes resume by themselves when it recovers.
    case storageUnavailable = 1020
    /// A `path` that is not a regular file inside `imagesDirectory` (or no such folder is set).
    case pathRefused = 1021

    /// The stable `data.reason` string.
    public var reason: String {
        switch self {
        case .deviceNotFound: "device_not_found"
        case .deviceExists: "device_exists"
        case .premisesNotFound: "premises_not_found"
        case .modelNotFound: "model_not_found"
        case .notAHub: "not_a_hub"
        case .notJoinable: "not_joinable"
        case .notJoined: "not_joined"
        case .invalidState: "invalid_state"
        case .clockInvalid: "clock_invalid"
        case .limitExceeded: "limit_exceeded"
        case .notAuthorised: "not_authorised"
        case .storageUnavailable: "storage_unavailable"
        case .pathRefused: "path_refused"
        }
    }

    /// The code whose ``reason`` is `reason`.
    public init?(reason: String) {
        guard let match = Self.allCases.first(where: { $0.reason == reason }) else { return nil }
        self = match
    }

    public var code: Int { rawValue }
    public var description: String { "\(reason) (\(rawValue))" }
}
