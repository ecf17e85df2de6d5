import Foundation
import SMETSCore

public enum DUISNamespace {
    public static let serviceUserGateway = "http://www.dccinterface.co.uk/ServiceUserGateway"
    public static let xmldsig = "http://www.w3.org/2000/09/xmldsig#"
}

/// `<originator>:<target>:<counter>` (duis.md §2).
public struct RequestID: Hashable, Sendable, CustomStringConvertible {
    public var originator: EUI64
    public var target: EUI64
    public var counter: UInt64

    public init(originator: EUI64, target: EUI64, counter: UInt64) { self.originator = originator; self.target = target; self.counter = counter }

    /// xs:token, so surrounding whitespace is trimmed; EUIs any case, counter without leading zeros.
    public init?(_ raw: String) {
        let text = raw.trimmingXMLSpace
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, let originator = Self.eui(parts[0]), let target = Self.eui(parts[1]),
              let counter = UInt64(parts[2]), parts[2].allSatisfy(\.isASCII), parts[2].first != "+",
              parts[2] == "0" || parts[2].first != "0" else { return nil }
        self.init(originator: originator, target: target, counter: counter)
    }

    /// `[A-Fa-f0-9]{2}(-[A-Fa-f0-9]{2}){7}`, exactly.
    public static func eui(_ text: Substring) -> EUI64? {
        let utf8 = Array(text.utf8)
        guard utf8.count == 23 else { return nil }
        for (index, byte) in utf8.enumerated() {
            if index % 3 == 2 { guard byte == UInt8(ascii: "-") else { return nil } } else {
                guard (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66) else { return nil }
            }
        }
        return EUI64(String(text))
    }

    /// Emitted with uppercase EUIs.
    public var description: String { "\(originator):\(target):\(counter)" }

    /// The device's side of the exchange: EUIs swapped, same counter.
    public var responseID: RequestID { RequestID(originator: target, target: originator, counter: counter) }
}

/// The body of a request in the subset, typed (duis.md §6; elements in XSD order).
public enum DUISBody: Hashable, Sendable {
    case readFirmwareVersion(execution: Timestamp?)
    case activateFirmware(execution: Timestamp?, hash: [UInt8])
    case join(other: EUI64)
    case unjoin(other: EUI64)
    case readDeviceLog(execution: Timestamp?, securityDetails: Bool)
    case updateHANDeviceLog(UpdateHANDeviceLog)
    case returnLocalCommandResponse(original: RequestID?, response: [UInt8])
    case restrictAccessForChangeOfTenancy(execution: Timestamp?, restriction: Timestamp)
    case updateSupplierName(execution: Timestamp?, name: String, telephone: String)
    case updateSecurityCredentialsCoS(execution: Timestamp?, importMPxN: String)
    case topUp(utrn: String)
    case readInstantaneousImportRegisters(execution: Timestamp?)
    case readInventory(InventorySelector)
    case devicePrenotification(Prenotification)
    case updateFirmware(image: [UInt8], version: String, devices: [EUI64])
    /// CV 5/6: the user's signed pre-command for a critical request.
    case signedPreCommand(execution: Timestamp?, payload: [UInt8])

    public struct UpdateHANDeviceLog: Hashable, Sendable {
        public var execution: Timestamp?
        public var device: EUI64
        public var add: Bool
        public var joinTimePeriod: Int?
        public var installCode: [UInt8]?
    }

    public enum InventorySelector: Hashable, Sendable {
        case uprn(String), device(EUI64), mpxn(String), property(postCode: String, address: String)
    }

    public struct Prenotification: Hashable, Sendable {
        public var device: EUI64
        public var manufacturer: String
        public var model: String
        public var deviceType: String
        public var smetsCHTSVersion: String?
        public var firmwareVersion: String?
        public var esmeVariant: String?
        public var associatedGPF: EUI64?
    }

    /// The ExecutionDateTime the request carries, if any.
    public var executionDateTime: Timestamp? {
        switch self {
        case .readFirmwareVersion(let t), .readInstantaneousImportRegisters(let t): t
        case .activateFirmware(let t, _), .readDeviceLog(let t, _), .restrictAccessForChangeOfTenancy(let t, _),
             .updateSupplierName(let t, _, _), .updateSecurityCredentialsCoS(let t, _), .signedPreCommand(let t, _): t
        case .updateHANDeviceLog(let body): body.execution
        default: nil
        }
    }
}

/// A parsed DUIS request: the envelope and its typed body.
public struct DUISRequest: Hashable, Sendable {
    public var schemaVersion: String
    public var requestID: RequestID
    public var commandVariant: Int
    public var serviceReference: String
    public var service: ServiceVariant
    public var body: DUISBody
    /// Whether a ds:Signature was present (lab mode does not verify it).
    public var signed: Bool
    /// Whether the signature is the templates' placeholder (digest and value "ZGVmYXVsdA==").
    public var placeholderSignature: Bool
    /// The document as received, when the DCC must keep it (held work survives a restart).
    public var document: [UInt8] = []

    public func with(document: [UInt8]) -> DUISRequest {
        var copy = self
        copy.document = document
        return copy
    }
}

/// Why a request is refused before any DUIS check: HTTP 400 (or 413), or not served by smetsd.
public struct DUISRequestError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        case tooLarge = "too_large"
        case doctype
        case entity
        case notWellFormed = "not_well_formed"
        /// Wrong root, schema-invalid, or reference / variant / body inconsistent.
        case invalid
        /// An XSD-valid variant outside smetsd's subset.
        case unsupported
    }

    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }

    init(_ error: XMLError) {
        switch error.kind {
        case .tooLarge: self.init(.tooLarge, error.description)
        case .doctype: self.init(.doctype, error.description)
        case .entity: self.init(.entity, error.description)
        case .tooDeep, .tooManyElements, .tooManyAttributes, .encoding, .notWellFormed, .namespace: self.init(.notWellFormed, error.description)
        }
    }
}

extension String {
    var trimmingXMLSpace: String {
        let utf8 = Array(self.utf8)
        guard let first = utf8.firstIndex(where: { !XMLReader.isSpace($0) }), let last = utf8.lastIndex(where: { !XMLReader.isSpace($0) }) else { return "" }
        return String(decoding: utf8[first...last], as: UTF8.self)
    }
}

/// Reads the children of one element in XSD order.
struct Children {
    let parent: String
    let elements: [XMLElement]
    var index = 0

    init(of element: XMLElement) throws(DUISRequestError) {
        parent = element.name
        elements = element.children
        guard element.textIsBlank else { throw DUISRequestError(.invalid, "\(element.name) holds text beside its elements") }
        for child in elements where child.namespace != DUISNamespace.serviceUserGateway && child.namespace != DUISNamespace.xmldsig {
            throw DUISRequestError(.invalid, "\(child.name) in \(parent) is not in the DUIS namespace")
        }
    }

    mutating func optional(_ name: String) -> XMLElement? {
        guard index < elements.count, elements[index].name == name, elements[index].namespace == DUISNamespace.serviceUserGateway else { return nil }
        index += 1
        return elements[index - 1]
    }

    mutating func required(_ name: String) throws(DUISRequestError) -> XMLElement {
        guard let element = optional(name) else {
            let found = index < elements.count ? "found \(elements[index].name)" : "found nothing more"
            throw DUISRequestError(.invalid, "\(parent) needs \(name) here; \(found)")
        }
        return element
    }

    func end() throws(DUISRequestError) {
        if index < elements.count { throw DUISRequestError(.invalid, "\(elements[index].name) is not expected in \(parent) at that place") }
    }

    // Typed leaves.

    mutating func text(_ name: String, length: ClosedRange<Int>? = nil) throws(DUISRequestError) -> String {
        try Self.leaf(try required(name), length: length)
    }

    mutating func optionalText(_ name: String, length: ClosedRange<Int>? = nil) throws(DUISRequestError) -> String? {
        guard let element = optional(name) else { return nil }
        return try Self.leaf(element, length: length)
    }

    static func leaf(_ element: XMLElement, length: ClosedRange<Int>?) throws(DUISRequestError) -> String {
        guard element.children.isEmpty else { throw DUISRequestError(.invalid, "\(element.name) must hold text, not elements") }
        if let length, !length.contains(element.text.count) {
            throw DUISRequestError(.invalid, "\(element.name) must be \(length.lowerBound)...\(length.upperBound) characters long")
        }
        return element.text
    }

    mutating func eui(_ name: String) throws(DUISRequestError) -> EUI64 {
        let text = try text(name).trimmingXMLSpace
        guard let eui = RequestID.eui(Substring(text)) else { throw DUISRequestError(.invalid, "\(name) '\(text)' is not an EUI-64 (00-1A-2B-FF-FE-00-E5-01)") }
        return eui
    }

    mutating func execution() throws(DUISRequestError) -> Timestamp? {
        guard let element = optional("ExecutionDateTime") else { return nil }
        return try DUISDateTime.parse(try Self.leaf(element, length: nil), element: "ExecutionDateTime")
    }

    mutating func base64(_ name: String) throws(DUISRequestError) -> [UInt8] {
        let text = try text(name).filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: text) else { throw DUISRequestError(.invalid, "\(name) is not base64") }
        return Array(data)
    }

    mutating func hex(_ name: String, octets: ClosedRange<Int>) throws(DUISRequestError) -> [UInt8] {
        let text = try text(name).trimmingXMLSpace
        guard let bytes = Hex.decode(text), octets.contains(bytes.count) else {
            throw DUISRequestError(.invalid, "\(name) must be \(octets.lowerBound == octets.upperBound ? "\(octets.lowerBound)" : "\(octets.lowerBound)-\(octets.upperBound)") octets of hex")
        }
        return bytes
    }
}

public enum Hex {
    public static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x41...0x46: c - 0x37
            case 0x61...0x66: c - 0x57
            default: nil
            }
        }
        var index = 0
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    public static func encode(_ bytes: some Sequence<UInt8>) -> String { bytes.map { upperHex($0, width: 2) }.joined() }
}

/// xs:dateTime in and out: any fraction, `Z` or an offset; no zone is taken as UTC.
public enum DUISDateTime {
    public static func parse(_ raw: String, element: String) throws(DUISRequestError) -> Timestamp {
        var text = raw.trimmingXMLSpace
        let hasZone = text.hasSuffix("Z") || text.hasSuffix("z") || (text.count > 19 && (text.dropFirst(19).contains("+") || text.dropFirst(19).contains("-")))
        if !hasZone { text += "Z" }
        guard let time = Timestamp(rfc3339: text) else { throw DUISRequestError(.invalid, "\(element) '\(raw)' is not an xs:dateTime") }
        return time
    }

    /// UTC with milliseconds and `Z`, as DUIS responses carry it.
    public static func format(_ time: Timestamp) -> String {
        let base = Timestamp(unixMillis: time.unixMillis - time.unixMillis.mod(1000)).rfc3339.dropLast()
        let millis = time.unixMillis.mod(1000)
        return base + "." + (millis < 10 ? "00" : millis < 100 ? "0" : "") + "\(millis)Z"
    }
}

extension Int64 {
    func mod(_ divisor: Int64) -> Int64 { let r = self % divisor; return r < 0 ? r + divisor : r }
}
