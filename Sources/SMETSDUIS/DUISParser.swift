import SMETSCore

/// Reads a DUIS request document into a `DUISRequest`: the XML first (hardened reader), then the
/// envelope in XSD order, then the body the variant names. What the XSD would reject, and a
/// reference, variant and body that disagree, are `invalid` (HTTP 400, duis.md §1).
public enum DUISParser {
    public static let acceptedSchemaVersions: Set<String> = ["5.0", "5.1", "5.2", "5.3", "5.4"]

    public static func parse(_ bytes: [UInt8], limits: XMLLimits = XMLLimits()) throws(DUISRequestError) -> DUISRequest {
        try parseDocument(bytes, limits: limits).request
    }

    /// The request and the tree it was read from (what its XML signature covers).
    public static func parseDocument(_ bytes: [UInt8], limits: XMLLimits = XMLLimits()) throws(DUISRequestError) -> (request: DUISRequest, document: XMLElement) {
        let root: XMLElement
        do { root = try XMLReader.parse(bytes, limits: limits) } catch { throw DUISRequestError(error) }
        return (try request(root), root)
    }

    static func request(_ root: XMLElement) throws(DUISRequestError) -> DUISRequest {
        guard root.namespace == DUISNamespace.serviceUserGateway, root.name == "Request" else {
            throw DUISRequestError(.invalid, "the root must be Request in \(DUISNamespace.serviceUserGateway); found \(root.name)")
        }
        guard let rawVersion = root.attribute("schemaVersion") else { throw DUISRequestError(.invalid, "Request needs the schemaVersion attribute") }
        let schemaVersion = normalisedDecimal(rawVersion.trimmingXMLSpace)
        guard acceptedSchemaVersions.contains(schemaVersion) else {
            throw DUISRequestError(.invalid, "schemaVersion '\(rawVersion)' is not one smetsd takes (5.0 to 5.4)")
        }
        var top = try Children(of: root)
        let header = try top.required("Header")
        let body = try top.required("Body")
        var signature: XMLElement?
        if top.index < top.elements.count, top.elements[top.index].namespace == DUISNamespace.xmldsig, top.elements[top.index].name == "Signature" {
            signature = top.elements[top.index]
            top.index += 1
        }
        try top.end()

        var fields = try Children(of: header)
        let rawID = try fields.text("RequestID")
        guard let requestID = RequestID(rawID) else {
            throw DUISRequestError(.invalid, "RequestID '\(rawID)' is not originator:target:counter (EUI-64s and a decimal counter)")
        }
        if let first = fields.optional("FirstInSequence") {
            let value = try Children.leaf(first, length: nil).trimmingXMLSpace
            guard ["true", "false", "1", "0"].contains(value) else { throw DUISRequestError(.invalid, "FirstInSequence must be a boolean") }
        }
        if let preceding = try fields.optionalText("PrecedingServiceRequestID"), RequestID(preceding) == nil {
            throw DUISRequestError(.invalid, "PrecedingServiceRequestID '\(preceding)' is not a RequestID")
        }
        let cvText = try fields.text("CommandVariant").trimmingXMLSpace
        guard let commandVariant = Int(cvText), (1...9).contains(commandVariant) else {
            throw DUISRequestError(.invalid, "CommandVariant '\(cvText)' must be 1 to 9")
        }
        let reference = try fields.text("ServiceReference").trimmingXMLSpace
        let variantName = try fields.text("ServiceReferenceVariant").trimmingXMLSpace
        try fields.end()

        guard let service = ServiceVariant.named(variantName) else {
            throw DUISRequestError(.unsupported, "service reference variant \(variantName) is not served by smetsd (see docs/duis.md for the subset)")
        }
        guard service.reference == reference else {
            throw DUISRequestError(.invalid, "ServiceReference \(reference) does not match ServiceReferenceVariant \(variantName) (expected \(service.reference))")
        }
        let bodyChildren = try Children(of: body)
        guard bodyChildren.elements.count == 1, let content = bodyChildren.elements.first, content.namespace == DUISNamespace.serviceUserGateway else {
            throw DUISRequestError(.invalid, "Body must hold exactly one DUIS element")
        }
        let typed: DUISBody
        if content.name == "SignedPreCommand" {
            typed = try signedPreCommand(content)
        } else {
            guard content.name == service.bodyElement else {
                throw DUISRequestError(.invalid, "service reference variant \(variantName) carries \(service.bodyElement), not \(content.name)")
            }
            typed = try Self.body(content, variant: variantName)
        }
        return DUISRequest(schemaVersion: schemaVersion, requestID: requestID, commandVariant: commandVariant, serviceReference: reference,
                           service: service, body: typed, signed: signature != nil, placeholderSignature: signature.map(isPlaceholder) ?? false)
    }

    /// `5.40` and `5.4` are the same xs:decimal.
    static func normalisedDecimal(_ text: String) -> String {
        guard text.contains(".") else { return text + ".0" }
        var trimmed = Substring(text)
        while trimmed.hasSuffix("0") { trimmed = trimmed.dropLast() }
        if trimmed.hasSuffix(".") { trimmed += "0" }
        return String(trimmed)
    }

    static func isPlaceholder(_ signature: XMLElement) -> Bool {
        signature.children.first { $0.name == "SignatureValue" }?.text.trimmingXMLSpace == "ZGVmYXVsdA=="
    }

    static func signedPreCommand(_ element: XMLElement) throws(DUISRequestError) -> DUISBody {
        var fields = try Children(of: element)
        let execution = try fields.execution()
        let payload = try fields.base64("GBCSPayload")
        try fields.end()
        return .signedPreCommand(execution: execution, payload: payload)
    }

    static func body(_ element: XMLElement, variant: String) throws(DUISRequestError) -> DUISBody {
        var fields = try Children(of: element)
        let result: DUISBody
        switch variant {
        case "11.2":
            result = .readFirmwareVersion(execution: try fields.execution())
        case "4.1.1":
            result = .readInstantaneousImportRegisters(execution: try fields.execution())
        case "11.3":
            let execution = try fields.execution()
            result = .activateFirmware(execution: execution, hash: try fields.hex("FirmwareHash", octets: 32...32))
        case "8.7.1", "8.7.2":
            result = .join(other: try fields.eui("OtherDeviceID"))
        case "8.8.1", "8.8.2":
            result = .unjoin(other: try fields.eui("OtherDeviceID"))
        case "8.9":
            let execution = try fields.execution()
            let details = fields.optional("ReadSecurityDetails")
            if let details, !details.children.isEmpty || !details.textIsBlank { throw DUISRequestError(.invalid, "ReadSecurityDetails must be empty") }
            result = .readDeviceLog(execution: execution, securityDetails: details != nil)
        case "8.11":
            let execution = try fields.execution()
            let device = try fields.eui("DeviceID")
            let type = try fields.text("RequestType").trimmingXMLSpace
            guard type == "Add" || type == "Remove" else { throw DUISRequestError(.invalid, "RequestType must be Add or Remove") }
            var log = DUISBody.UpdateHANDeviceLog(execution: execution, device: device, add: type == "Add")
            if let add = fields.optional("AddDeviceToCHFWhitelist") {
                var inner = try Children(of: add)
                let period = try inner.text("JoinTimePeriod").trimmingXMLSpace
                guard let seconds = Int(period), seconds >= 1 else { throw DUISRequestError(.invalid, "JoinTimePeriod must be a positive integer") }
                log.joinTimePeriod = seconds
                log.installCode = try inner.hex("InstallCode", octets: 6...16)
                _ = try inner.optionalText("ImportMPxN", length: 1...13)
                _ = try inner.optionalText("SecondaryImportMPAN", length: 13...13)
                _ = try inner.optionalText("ExportMPAN", length: 13...13)
                try inner.end()
            }
            result = .updateHANDeviceLog(log)
        case "8.13":
            var original: RequestID?
            if let text = try fields.optionalText("OriginalRequestID") {
                guard let id = RequestID(text) else { throw DUISRequestError(.invalid, "OriginalRequestID '\(text)' is not a RequestID") }
                original = id
            }
            result = .returnLocalCommandResponse(original: original, response: try fields.base64("DeviceGBCSResponse"))
        case "3.2":
            let execution = try fields.execution()
            let restriction = try DUISDateTime.parse(try fields.text("RestrictionDateTime"), element: "RestrictionDateTime")
            result = .restrictAccessForChangeOfTenancy(execution: execution, restriction: restriction)
        case "3.4":
            let execution = try fields.execution()
            let name = try fields.text("SupplierName", length: 1...15)
            guard name.utf8.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) else { throw DUISRequestError(.invalid, "SupplierName must be printable ASCII") }
            let telephone = try fields.text("SupplierTelephoneNumber", length: 1...18)
            guard telephone.allSatisfy({ $0 == " " || ($0.isASCII && $0.isNumber) }) else {
                throw DUISRequestError(.invalid, "SupplierTelephoneNumber must be digits and spaces")
            }
            result = .updateSupplierName(execution: execution, name: name, telephone: telephone)
        case "6.23":
            let execution = try fields.execution()
            let floor = try fields.text("SupplierFloorSeqNumber").trimmingXMLSpace
            guard let floorValue = UInt64(floor), floorValue <= UInt64(Int64.max) else { throw DUISRequestError(.invalid, "SupplierFloorSeqNumber must be 0...2^63-1") }
            if let topUpFloor = try fields.optionalText("SupplierPrepaymentTopUpFloorSeqNumber"), UInt64(topUpFloor.trimmingXMLSpace).map({ $0 > UInt64(Int64.max) }) ?? true {
                throw DUISRequestError(.invalid, "SupplierPrepaymentTopUpFloorSeqNumber must be 0...2^63-1")
            }
            var replacement = try Children(of: try fields.required("SupplierReplacementCertificates"))
            _ = try replacement.base64("DigitalSigningCertificate")
            if replacement.optional("KeyAgreementCertificate") != nil { replacement.index -= 1; _ = try replacement.base64("KeyAgreementCertificate") }
            if replacement.optional("KeyAgreementTopUpCertificate") != nil { replacement.index -= 1; _ = try replacement.base64("KeyAgreementTopUpCertificate") }
            try replacement.end()
            var path = try Children(of: try fields.required("CertificationPathCertificates"))
            var certificates = 0
            while path.optional("Certificate") != nil { path.index -= 1; _ = try path.base64("Certificate"); certificates += 1 }
            try path.end()
            guard (1...3).contains(certificates) else { throw DUISRequestError(.invalid, "CertificationPathCertificates holds 1 to 3 Certificate") }
            let apply = try fields.text("ApplyTimeBasedCPVChecks").trimmingXMLSpace
            guard ["true", "false", "1", "0"].contains(apply) else { throw DUISRequestError(.invalid, "ApplyTimeBasedCPVChecks must be a boolean") }
            result = .updateSecurityCredentialsCoS(execution: execution, importMPxN: try fields.text("ImportMPxN", length: 1...13))
        case "2.2":
            let utrn = try fields.text("UTRN").trimmingXMLSpace
            guard utrn.count == 20, utrn.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { throw DUISRequestError(.invalid, "UTRN must be exactly 20 digits") }
            result = .topUp(utrn: utrn)
        case "8.2":
            if let uprn = try fields.optionalText("UPRN") {
                let digits = uprn.trimmingXMLSpace
                guard (1...12).contains(digits.count), let value = UInt64(digits), value > 0 else { throw DUISRequestError(.invalid, "UPRN must be a positive integer of at most 12 digits") }
                result = .readInventory(.uprn(String(value)))
            } else if fields.optional("DeviceID") != nil {
                fields.index -= 1
                result = .readInventory(.device(try fields.eui("DeviceID")))
            } else if let mpxn = try fields.optionalText("MPxN", length: 1...13) {
                result = .readInventory(.mpxn(mpxn))
            } else if let filter = fields.optional("PropertyFilter") {
                var inner = try Children(of: filter)
                let postCode = try inner.text("PostCode", length: 6...8)
                let address = try inner.text("AddressIdentifier", length: 0...30)
                try inner.end()
                result = .readInventory(.property(postCode: postCode, address: address))
            } else {
                throw DUISRequestError(.invalid, "ReadInventory needs one of UPRN, DeviceID, MPxN or PropertyFilter")
            }
        case "12.2":
            let device = try fields.eui("DeviceID")
            let manufacturer = try fields.text("DeviceManufacturer", length: 1...30)
            let model = try fields.text("DeviceModel", length: 1...30)
            let type = try fields.text("DeviceType").trimmingXMLSpace
            guard ["ESME", "GSME", "GPF", "CHF", "HCALCS", "PPMID", "IHD", "CAD"].contains(type) else {
                throw DUISRequestError(.invalid, "DeviceType '\(type)' is not one of ESME GSME GPF CHF HCALCS PPMID IHD CAD")
            }
            let smets = try fields.optionalText("SMETSCHTSVersion", length: 1...20)
            let firmware = try fields.optionalText("FirmwareVersion", length: 1...8)
            let variant = try fields.optionalText("ESMEVariant")
            var gpf: EUI64?
            if fields.optional("AssociatedGPFDeviceID") != nil { fields.index -= 1; gpf = try fields.eui("AssociatedGPFDeviceID") }
            result = .devicePrenotification(.init(device: device, manufacturer: manufacturer, model: model, deviceType: type,
                                                  smetsCHTSVersion: smets, firmwareVersion: firmware, esmeVariant: variant, associatedGPF: gpf))
        case "11.1", "11.4":
            let image = try fields.base64("FirmwareImage")
            guard image.count <= 10_240_000 else { throw DUISRequestError(.invalid, "FirmwareImage is larger than 10 240 000 octets") }
            let version = try fields.text("FirmwareVersion", length: 1...8)
            let listText = try fields.text("DeviceIDList").trimmingXMLSpace
            var devices: [EUI64] = []
            for part in listText.split(separator: ",", omittingEmptySubsequences: false) {
                guard let eui = RequestID.eui(part) else { throw DUISRequestError(.invalid, "DeviceIDList entry '\(part)' is not an EUI-64") }
                devices.append(eui)
            }
            guard (1...50_000).contains(devices.count) else { throw DUISRequestError(.invalid, "DeviceIDList holds 1 to 50 000 devices") }
            result = .updateFirmware(image: image, version: version, devices: devices)
        default:
            throw DUISRequestError(.unsupported, "service reference variant \(variant) is not served by smetsd")
        }
        try fields.end()
        return result
    }
}
