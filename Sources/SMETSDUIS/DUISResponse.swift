import Foundation
import SMETSCore

/// A DUIS response code: I0, I99, W…, E… (duis.md §4).
public struct ResponseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let success = ResponseCode(rawValue: "I0")
    public static let accepted = ResponseCode(rawValue: "I99")
    public static let invalidUser = ResponseCode(rawValue: "E1")
    public static let roleNotAllowed = ResponseCode(rawValue: "E2")
    public static let deviceStatus = ResponseCode(rawValue: "E5")
    public static let deviceType = ResponseCode(rawValue: "E11")
    public static let commandVariant = ResponseCode(rawValue: "E12")
    public static let wrongService = ResponseCode(rawValue: "E13")
    public static let noSuchDevice = ResponseCode(rawValue: "E19")
    public static let cannotCommunicate = ResponseCode(rawValue: "E20")
    public static let noResponse = ResponseCode(rawValue: "E21")

    public var isError: Bool { rawValue.hasPrefix("E") }
}

/// One device of a DSPInventory, elements in XSD order.
public struct InventoryEntry: Hashable, Sendable {
    public var deviceID: EUI64
    public var deviceType: String
    public var status: String?
    public var manufacturer: String
    public var model: String
    public var smetsCHTSVersion: String?
    public var firmwareVersion: String?
    public var firmwareVersionStatus: String?
    public var cplStatus: String?
    public var dateCommissioned: String?
    public var cspRegion: String?
    public var gbcsVersion: String?

    public init(deviceID: EUI64, deviceType: String, status: String?, manufacturer: String, model: String, smetsCHTSVersion: String? = nil,
                firmwareVersion: String? = nil, firmwareVersionStatus: String? = nil, cplStatus: String? = nil, dateCommissioned: String? = nil,
                cspRegion: String? = nil, gbcsVersion: String? = nil) {
        self.deviceID = deviceID; self.deviceType = deviceType; self.status = status; self.manufacturer = manufacturer; self.model = model
        self.smetsCHTSVersion = smetsCHTSVersion; self.firmwareVersion = firmwareVersion; self.firmwareVersionStatus = firmwareVersionStatus
        self.cplStatus = cplStatus; self.dateCommissioned = dateCommissioned; self.cspRegion = cspRegion; self.gbcsVersion = gbcsVersion
    }
}

/// A DUIS Response, written in the order and form of the V5.4 XSD.
public struct DUISResponse: Hashable, Sendable {
    public enum Content: Hashable, Sendable {
        case gbcsPayload([UInt8])
        case preCommand(gbcsVersion: String, payload: [UInt8])
        case localCommand(payload: [UInt8])
        case inventory([InventoryEntry])
        /// 8F66 success or 8F67 failure of a future-dated command.
        case futureDatedAlert(code: String, payload: [UInt8], instruction: Int, totalInstructions: Int)
        /// W110101 / W110401: the devices left out of an 11.1 / 11.4, by reason.
        case firmwareWarning(ppmid: Bool, FirmwareWarning)
    }

    /// The DeviceIDLists of DSPUpdateFirmwareWarning / DSPUpdatePPMIDFirmwareWarning, in XSD order.
    public struct FirmwareWarning: Hashable, Sendable {
        public var invalid: [EUI64] = []
        public var notCommissioned: [EUI64] = []
        public var notApplicable: [EUI64] = []
        public var otherRequestInProgress: [EUI64] = []
        public var invalidGBCSVersion: [EUI64] = []
        public init() {}
        public var isEmpty: Bool { invalid.isEmpty && notCommissioned.isEmpty && notApplicable.isEmpty && otherRequestInProgress.isEmpty && invalidGBCSVersion.isEmpty }
    }

    public enum Body: Hashable, Sendable {
        case responseMessage(reference: String, variant: String, content: Content?)
        case deviceAlert(alertCode: String, payload: [UInt8])
        case dccAlert(alertCode: String, DCCAlert)
    }

    /// The DCCAlert choice of a DCCAlertMessage (duis.md §4), elements in XSD order.
    public enum DCCAlert: Hashable, Sendable {
        /// The devices an 11.1 / 11.4 image could not be distributed to.
        case firmwareDistributionFailure(updateRequest: RequestID, meters: [EUI64])
        /// What the DCC makes of a PPMID's CS09: the device, its alert code, when, the version and the outcome.
        case ppmidFirmwareUpgrade(device: EUI64, deviceAlertCode: String, timestamp: Timestamp?, version: FirmwareVersion, success: Bool)
    }

    public var schemaVersion: String
    public var requestID: RequestID?
    public var responseID: RequestID?
    public var code: ResponseCode
    public var dateTime: Timestamp
    public var body: Body

    public init(schemaVersion: String, requestID: RequestID?, responseID: RequestID?, code: ResponseCode, dateTime: Timestamp, body: Body) {
        self.schemaVersion = schemaVersion; self.requestID = requestID; self.responseID = responseID; self.code = code; self.dateTime = dateTime; self.body = body
    }

    /// A synchronous reply to `request`: the RequestID echoed, the references, maybe content.
    public static func reply(to request: DUISRequest, code: ResponseCode, at time: Timestamp, content: Content? = nil) -> DUISResponse {
        DUISResponse(schemaVersion: request.schemaVersion, requestID: request.requestID, responseID: nil, code: code, dateTime: time,
                     body: .responseMessage(reference: request.serviceReference, variant: request.service.variant, content: content))
    }

    /// A device's answer: both IDs, the ResponseID the RequestID with its EUIs swapped.
    public static func deviceResponse(to request: DUISRequest, code: ResponseCode, at time: Timestamp, content: Content?) -> DUISResponse {
        DUISResponse(schemaVersion: request.schemaVersion, requestID: request.requestID, responseID: request.requestID.responseID, code: code,
                     dateTime: time, body: .responseMessage(reference: request.serviceReference, variant: request.service.variant, content: content))
    }

    /// An unsolicited device alert (duis.md §4): only a ResponseID, `<device>:<user>:<alert counter>`.
    public static func deviceAlert(schemaVersion: String, device: EUI64, user: EUI64, counter: UInt64, at time: Timestamp,
                                   alertCode: String, payload: [UInt8]) -> DUISResponse {
        DUISResponse(schemaVersion: schemaVersion, requestID: nil, responseID: RequestID(originator: device, target: user, counter: counter), code: .success,
                     dateTime: time, body: .deviceAlert(alertCode: alertCode, payload: payload))
    }

    /// A DCC alert (duis.md §4): only a ResponseID, `<DCC>:<user>:<DCC counter>`.
    public static func dccAlert(schemaVersion: String, dcc: EUI64, user: EUI64, counter: UInt64, at time: Timestamp,
                                alertCode: String, alert: DCCAlert) -> DUISResponse {
        DUISResponse(schemaVersion: schemaVersion, requestID: nil, responseID: RequestID(originator: dcc, target: user, counter: counter), code: .success,
                     dateTime: time, body: .dccAlert(alertCode: alertCode, alert))
    }

    public var xml: String {
        var out = #"<?xml version="1.0" encoding="UTF-8"?>"#
        out += #"<sr:Response xmlns:sr="\#(DUISNamespace.serviceUserGateway)" schemaVersion="\#(schemaVersion)"><sr:Header>"#
        if let requestID { out += leaf("RequestID", requestID.description) }
        if let responseID { out += leaf("ResponseID", responseID.description) }
        out += leaf("ResponseCode", code.rawValue)
        out += leaf("ResponseDateTime", DUISDateTime.format(dateTime))
        out += "</sr:Header><sr:Body>"
        switch body {
        case .responseMessage(let reference, let variant, let content):
            out += "<sr:ResponseMessage>" + leaf("ServiceReference", reference) + leaf("ServiceReferenceVariant", variant)
            if let content { out += Self.xml(content) }
            out += "</sr:ResponseMessage>"
        case .deviceAlert(let alertCode, let payload):
            out += "<sr:DeviceAlertMessage>" + leaf("AlertCode", alertCode) + leaf("GBCSPayload", base64(payload)) + "</sr:DeviceAlertMessage>"
        case .dccAlert(let alertCode, let alert):
            out += "<sr:DCCAlertMessage>" + leaf("DCCAlertCode", alertCode) + "<sr:DCCAlert>"
            switch alert {
            case .firmwareDistributionFailure(let request, let meters):
                out += "<sr:FirmwareDistributionFailure>" + leaf("UpdateFirmwareRequestID", request.description)
                    + leaf("MeterIDs", meters.map(\.description).joined(separator: ",")) + "</sr:FirmwareDistributionFailure>"
            case .ppmidFirmwareUpgrade(let device, let code, let timestamp, let version, let success):
                out += "<sr:PPMIDAlert>" + leaf("DeviceID", device.description) + leaf("DeviceAlertCode", code)
                if let timestamp { out += leaf("Timestamp", DUISDateTime.format(timestamp)) }
                out += "<sr:PPMIDFirmwareUpgradeAlert>" + leaf("FirmwareVersion", version.hex)
                    + leaf("ActivateImageResultCode", success ? "ActivationSuccess" : "ActivationFailure") + "</sr:PPMIDFirmwareUpgradeAlert></sr:PPMIDAlert>"
            }
            out += "</sr:DCCAlert></sr:DCCAlertMessage>"
        }
        return out + "</sr:Body></sr:Response>"
    }

    static func xml(_ content: Content) -> String {
        switch content {
        case .gbcsPayload(let payload):
            return leaf("GBCSPayload", base64(payload))
        case .preCommand(let version, let payload):
            return "<sr:PreCommand>" + leaf("GBCSVersion", version) + leaf("GBCSPayload", base64(payload)) + "</sr:PreCommand>"
        case .localCommand(let payload):
            return "<sr:LocalCommand>" + leaf("GBCSPayload", base64(payload)) + "</sr:LocalCommand>"
        case .futureDatedAlert(let code, let payload, let instruction, let total):
            return "<sr:FutureDatedDeviceAlertMessage>" + leaf("FutureDatedAlertCode", code) + leaf("GBCSPayload", base64(payload))
                + leaf("InstructionNumber", "\(instruction)") + leaf("TotalCommandInstructions", "\(total)") + "</sr:FutureDatedDeviceAlertMessage>"
        case .firmwareWarning(let ppmid, let warning):
            let name = ppmid ? "DSPUpdatePPMIDFirmwareWarning" : "DSPUpdateFirmwareWarning"
            var out = "<sr:\(name)>"
            for (element, list) in [("InvalidDeviceIDList", warning.invalid), ("NotCommissionedDeviceIDList", warning.notCommissioned),
                                    ("NotApplicableFirmwareDeviceIDList", warning.notApplicable), ("OtherRequestInProgressList", warning.otherRequestInProgress),
                                    ("InvalidGBCSVersionList", warning.invalidGBCSVersion)] where !list.isEmpty {
                out += leaf(element, list.map(\.description).joined(separator: ","))
            }
            return out + "</sr:\(name)>"
        case .inventory(let devices):
            var out = "<sr:DSPInventory>"
            for device in devices {
                out += "<sr:Device>" + leaf("DeviceID", device.deviceID.description) + leaf("DeviceType", device.deviceType)
                if let status = device.status { out += leaf("DeviceStatus", status) }
                out += leaf("DeviceManufacturer", device.manufacturer) + leaf("DeviceModel", device.model)
                if let value = device.smetsCHTSVersion { out += leaf("SMETSCHTSVersion", value) }
                if let value = device.firmwareVersion { out += leaf("DeviceFirmwareVersion", value) }
                if let value = device.firmwareVersionStatus { out += leaf("DeviceFirmwareVersionStatus", value) }
                if let value = device.cplStatus { out += leaf("CPLStatus", value) }
                if let value = device.dateCommissioned { out += leaf("DateCommissioned", value) }
                if let value = device.cspRegion { out += leaf("CSPRegion", value) }
                if let value = device.gbcsVersion { out += leaf("DeviceGBCSVersion", value) }
                out += "</sr:Device>"
            }
            return out + "</sr:DSPInventory>"
        }
    }
}

func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

func leaf(_ name: String, _ value: String) -> String { "<sr:\(name)>\(escape(value))</sr:\(name)>" }

/// Character data as XML text: the three characters that could end or start markup.
func escape(_ text: String) -> String {
    guard text.contains(where: { $0 == "&" || $0 == "<" || $0 == ">" }) else { return text }
    var out = ""
    for character in text {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        default: out.append(character)
        }
    }
    return out
}

/// The DCC's refusal of a request, as a DUIS code and a sentence for the log.
public struct DUISRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: ResponseCode
    public var message: String
    public init(_ code: ResponseCode, _ message: String) { self.code = code; self.message = message }
    public var description: String { "\(code): \(message)" }
}

/// The DCC's view of a target device that the checks need.
public struct TargetView: Sendable, Hashable {
    public var type: DeviceType
    public var status: InventoryStatus
    /// Why the SMI lets no service request target it (the MP202 interim failure), if so.
    public var blocked: String?
    public init(type: DeviceType, status: InventoryStatus, blocked: String? = nil) { self.type = type; self.status = status; self.blocked = blocked }
}

/// duis.md §8, the order of checks, as far as it is pure. Step 1 is the parser; step 2 (strict
/// signatures) and the body rules of step 7 belong to the caller.
public enum DUISChecks {
    /// Steps 3 and 4: the Command Variant against the path, then against the variant.
    public static func commandVariant(_ request: DUISRequest, path: DUISServicePath) -> DUISRefusal? {
        let cv = request.commandVariant
        if (1...8).contains(cv), !path.commandVariants.contains(cv) {
            let right = DUISServicePath.allCases.first { $0.commandVariants.contains(cv) }!
            return DUISRefusal(.wrongService, "command variant \(cv) goes to \(right.rawValue), not \(path.rawValue)")
        }
        guard request.service.commandVariants.contains(cv) else {
            let allowed = request.service.commandVariants.sorted().map(String.init).joined(separator: ", ")
            return DUISRefusal(.commandVariant, "command variant \(cv) does not apply to \(request.service.variant) (allowed: \(allowed))")
        }
        if cv == 3 || cv == 7 {
            return DUISRefusal(.commandVariant, "command variant \(cv) (both WAN and local delivery) is not offered, as in DCC Boxed")
        }
        let signed = if case .signedPreCommand = request.body { true } else { false }
        if (cv == 5 || cv == 6) != signed {
            return DUISRefusal(.commandVariant, signed ? "a SignedPreCommand needs command variant 5 or 6"
                                                       : "command variant \(cv) completes a critical request and carries a SignedPreCommand")
        }
        return nil
    }

    /// The statuses in which the SMI lets a device be the target.
    public static func eligibleStatuses(_ service: ServiceVariant) -> Set<InventoryStatus> {
        switch service.variant {
        case "8.7.1", "8.7.2": [.whitelisted, .installedNotCommissioned, .commissioned, .suspended]
        default: [.installedNotCommissioned, .commissioned, .suspended]
        }
    }

    /// Step 5: the target exists (or is the DCC), has an eligible type, then an eligible status.
    public static func target(_ request: DUISRequest, dccID: EUI64, lookup: (EUI64) -> TargetView?) -> DUISRefusal? {
        let target = request.requestID.target
        guard let types = request.service.targetTypes else {
            return target == dccID ? nil : DUISRefusal(.noSuchDevice, "\(request.service.variant) is a non-device request; its target must be the DCC, \(dccID)")
        }
        guard let view = lookup(target) else { return DUISRefusal(.noSuchDevice, "\(target) is not in the inventory") }
        guard types.contains(view.type) else {
            let names = types.map(\.name).sorted().joined(separator: ", ")
            return DUISRefusal(.deviceType, "\(request.service.variant) does not target a \(view.type) (targets: \(names))")
        }
        if let blocked = view.blocked { return DUISRefusal(.deviceStatus, blocked) }
        guard eligibleStatuses(request.service).contains(view.status) else {
            return DUISRefusal(.deviceStatus, "\(target) is \(view.status) in the inventory; \(request.service.variant) needs it installed")
        }
        return nil
    }
}
