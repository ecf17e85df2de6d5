/// The test side's reading of GBCS messages, written from gbcs.md (§1, §2, §5.0) and independent of
/// smetsd's encoder: every length is checked and no byte may be left over.
struct GBCSMessage {
    var wrapped: Bool
    var cra: UInt8
    var counter: UInt64
    var originator: [UInt8]
    var recipient: [UInt8]
    /// The 12-byte DLMS date-time, when the header carries one.
    var dateTime: [UInt8]?
    var messageCode: UInt16
    /// The supplementary remote party and its counter (18 bytes of other-information).
    var supplementary: (party: [UInt8], counter: UInt64)?
    var content: [UInt8]
    /// nil: no signature-length field; else the signature's bytes (empty for `00`).
    var signature: [UInt8]?

    struct Malformed: Error, CustomStringConvertible { var description: String }

    static func read(_ bytes: [UInt8]) throws -> GBCSMessage {
        var reader = ByteReader(bytes)
        var wrapped = false
        var end = bytes.count
        if bytes.first == 0xDD {
            wrapped = true
            guard try reader.take(7) == [0xDD, 0, 0, 0, 0, 0, 0] else { throw Malformed(description: "DD header") }
            let ciphered = try reader.length()
            guard reader.position + ciphered == bytes.count else { throw Malformed(description: "ciphered-service length") }
            guard try reader.take(5) == [0x11, 0, 0, 0, 0] else { throw Malformed(description: "security header") }
            end = bytes.count - 12
        }
        guard try reader.take(2) == [0xDF, 0x09] else { throw Malformed(description: "DF 09") }
        let cra = try reader.byte()
        let counter = try reader.integer(8)
        guard try reader.byte() == 8 else { throw Malformed(description: "originator title length") }
        let originator = try reader.take(8)
        guard try reader.byte() == 8 else { throw Malformed(description: "recipient title length") }
        let recipient = try reader.take(8)
        let dateLength = try reader.byte()
        guard dateLength == 0 || dateLength == 12 else { throw Malformed(description: "date-time length \(dateLength)") }
        var dateTime: [UInt8]?
        if dateLength == 12 { dateTime = try reader.take(12) }
        let other = try reader.length()
        guard other == 2 || other == 18 else { throw Malformed(description: "other-information length \(other)") }
        let code = UInt16(try reader.integer(2))
        var supplementary: (party: [UInt8], counter: UInt64)?
        if other == 18 { supplementary = (party: try reader.take(8), counter: try reader.integer(8)) }
        let content = try reader.take(try reader.length())
        var signature: [UInt8]?
        if reader.position < end {
            let n = try reader.length()
            guard n == 0 || n == 64 else { throw Malformed(description: "signature length \(n)") }
            signature = try reader.take(n)
        }
        guard reader.position == end else { throw Malformed(description: "bytes after the DF block") }
        if wrapped { _ = try reader.take(12) }
        guard reader.position == bytes.count else { throw Malformed(description: "trailing bytes") }
        return GBCSMessage(wrapped: wrapped, cra: cra, counter: counter, originator: originator, recipient: recipient, dateTime: dateTime,
                           messageCode: code, supplementary: supplementary, content: content, signature: signature)
    }
}

struct ByteReader {
    let bytes: [UInt8]
    var position = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { position == bytes.count }

    mutating func take(_ n: Int) throws -> [UInt8] {
        guard n >= 0, position + n <= bytes.count else { throw GBCSMessage.Malformed(description: "short at \(position)") }
        defer { position += n }
        return Array(bytes[position..<position + n])
    }

    mutating func byte() throws -> UInt8 { try take(1)[0] }

    mutating func integer(_ n: Int) throws -> UInt64 { try take(n).reduce(0) { $0 << 8 | UInt64($1) } }

    /// gbcs.md §1: `nn`, `81 nn`, `82 nn nn`, always the shortest.
    mutating func length() throws -> Int {
        let first = try byte()
        switch first {
        case 0..<0x80: return Int(first)
        case 0x81:
            let n = Int(try byte())
            guard n >= 0x80 else { throw GBCSMessage.Malformed(description: "long form for \(n)") }
            return n
        case 0x82:
            let n = Int(try integer(2))
            guard n >= 0x100 else { throw GBCSMessage.Malformed(description: "long form for \(n)") }
            return n
        default: throw GBCSMessage.Malformed(description: "length byte \(first)")
        }
    }
}

/// DLMS A-XDR data (gbcs.md §5.0), the tags the subset uses.
indirect enum DLMSData: Equatable {
    case null
    case array([DLMSData])
    case structure([DLMSData])
    case boolean(Bool)
    case unsigned(UInt64)
    case signed(Int64)
    case octets([UInt8])
    case visible(String)
    case enumeration(UInt8)

    static func read(_ reader: inout ByteReader) throws -> DLMSData {
        let tag = try reader.byte()
        switch tag {
        case 0x00: return .null
        case 0x01, 0x02:
            let count = try reader.length()
            var items: [DLMSData] = []
            for _ in 0..<count { items.append(try read(&reader)) }
            return tag == 0x01 ? .array(items) : .structure(items)
        case 0x03: return .boolean(try reader.byte() != 0)
        case 0x05: return .signed(Int64(Int32(bitPattern: UInt32(try reader.integer(4)))))
        case 0x06: return .unsigned(try reader.integer(4))
        case 0x09: return .octets(try reader.take(try reader.length()))
        case 0x0A: return .visible(String(decoding: try reader.take(try reader.length()), as: UTF8.self))
        case 0x0F: return .signed(Int64(Int8(bitPattern: try reader.byte())))
        case 0x10: return .signed(Int64(Int16(bitPattern: UInt16(try reader.integer(2)))))
        case 0x11: return .unsigned(UInt64(try reader.byte()))
        case 0x12: return .unsigned(try reader.integer(2))
        case 0x16: return .enumeration(try reader.byte())
        default: throw GBCSMessage.Malformed(description: "DLMS tag \(tag) at \(reader.position - 1)")
        }
    }

    var items: [DLMSData] {
        switch self {
        case .array(let items), .structure(let items): items
        default: []
        }
    }

    var octetValue: [UInt8]? { if case .octets(let bytes) = self { bytes } else { nil } }
    var unsignedValue: UInt64? { if case .unsigned(let value) = self { value } else { nil } }
}

/// A DLMS access-response (gbcs.md §5.0): `DA` LIID `00` `00` count data… count result specs.
struct DLMSAccessResponse {
    var liid: [UInt8]
    var data: [DLMSData]
    /// (kind 1 get / 2 set / 3 action, result).
    var results: [(kind: UInt8, result: UInt8)]

    static func read(_ content: [UInt8]) throws -> DLMSAccessResponse {
        var reader = ByteReader(content)
        guard try reader.byte() == 0xDA else { throw GBCSMessage.Malformed(description: "not an access-response") }
        let liid = try reader.take(4)
        guard try reader.take(2) == [0x00, 0x00] else { throw GBCSMessage.Malformed(description: "date-time or request specs present") }
        var data: [DLMSData] = []
        for _ in 0..<(try reader.length()) { data.append(try DLMSData.read(&reader)) }
        var results: [(kind: UInt8, result: UInt8)] = []
        for _ in 0..<(try reader.length()) { results.append((kind: try reader.byte(), result: try reader.byte())) }
        guard reader.atEnd else { throw GBCSMessage.Malformed(description: "trailing bytes in the access-response") }
        return DLMSAccessResponse(liid: liid, data: data, results: results)
    }
}

/// A DLMS data-notification (gbcs.md §5.0): `0F` LIID `00` `02 03` alert code, date-time, body.
struct DLMSDataNotification {
    var liid: [UInt8]
    var alertCode: UInt64
    var dateTime: [UInt8]
    var body: DLMSData

    static func read(_ content: [UInt8]) throws -> DLMSDataNotification {
        var reader = ByteReader(content)
        guard try reader.byte() == 0x0F else { throw GBCSMessage.Malformed(description: "not a data-notification") }
        let liid = try reader.take(4)
        guard try reader.byte() == 0x00 else { throw GBCSMessage.Malformed(description: "date-time present") }
        guard case .structure(let fields) = try DLMSData.read(&reader), fields.count == 3, case .unsigned(let code) = fields[0],
              case .octets(let time) = fields[1], time.count == 12 else { throw GBCSMessage.Malformed(description: "notification body") }
        guard reader.atEnd else { throw GBCSMessage.Malformed(description: "trailing bytes in the notification") }
        return DLMSDataNotification(liid: liid, alertCode: code, dateTime: time, body: fields[2])
    }
}

/// The ASN.1 firmware alerts of gbcs.md §5.3: `30 L | 02 03 00 8F xx | 18 0F <time> | [04 08 <device>] |
/// 04 04 <version> | 02 01 <rc>`: CS09 (8F8B) without a device, CCS08 (8F8A / 8F89) with one.
struct ASN1FirmwareAlert {
    var alertCode: UInt16
    var time: String
    var device: [UInt8]?
    var version: [UInt8]
    var result: UInt8

    static func read(_ content: [UInt8]) throws -> ASN1FirmwareAlert {
        var reader = ByteReader(content)
        guard try reader.byte() == 0x30, try reader.length() == content.count - 2 else { throw GBCSMessage.Malformed(description: "SEQUENCE") }
        guard try reader.take(3) == [0x02, 0x03, 0x00] else { throw GBCSMessage.Malformed(description: "alert code INTEGER") }
        let code = UInt16(try reader.integer(2))
        guard try reader.take(2) == [0x18, 0x0F] else { throw GBCSMessage.Malformed(description: "GeneralizedTime") }
        let time = String(decoding: try reader.take(15), as: UTF8.self)
        var device: [UInt8]?
        let next = try reader.take(2)
        if next == [0x04, 0x08] {
            device = try reader.take(8)
            guard try reader.take(2) == [0x04, 0x04] else { throw GBCSMessage.Malformed(description: "version") }
        } else {
            guard next == [0x04, 0x04] else { throw GBCSMessage.Malformed(description: "version") }
        }
        let version = try reader.take(4)
        guard try reader.take(2) == [0x02, 0x01] else { throw GBCSMessage.Malformed(description: "result INTEGER") }
        let result = try reader.byte()
        guard reader.atEnd else { throw GBCSMessage.Malformed(description: "trailing bytes in the alert") }
        return ASN1FirmwareAlert(alertCode: code, time: time, device: device, version: version, result: result)
    }
}
