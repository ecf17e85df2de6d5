import Crypto
import Foundation
import SMETSCore

/// GBCS messages as smetsd's devices and DCC put them in DUIS `GBCSPayload`s (gbcs.md): the
/// general-signing block (DF), the general-ciphering wrapper (DD) and the payloads of the subset.
public enum GBCS {
    public enum CRA: UInt8, Sendable { case command = 1, response = 2, alert = 3 }

    /// gbcs.md §3.
    public enum MessageCode: UInt16, Sendable {
        case cs08 = 0x0129, ecs52 = 0x0059, gcs38 = 0x0084, cs06 = 0x0012, cs06Alert = 0x00CA
        case cs03a1 = 0x000D, cs03a2 = 0x00AB, cs03b = 0x000E, cs03c = 0x00AF, cs04ac = 0x000F, cs04b = 0x0010
        case ecs12 = 0x0022, gcs09 = 0x0072, cs01a = 0x0007, cs01b = 0x0097, ecs17b = 0x0027, gcs13a = 0x0074
        case cs07 = 0x0013, ccs06 = 0x010F, ccs01 = 0x0001, ccs02 = 0x0002
        case ecs16 = 0x0025, gcs44 = 0x0088, cs14Alert = 0x0018
        case ccs08Alert = 0x0128, cs09Alert = 0x012B

        /// Responses to these are bare, device-signed DF blocks (gbcs.md §2.3).
        public var criticalResponse: Bool { [.cs06, .cs03a1, .cs03a2, .cs03c, .cs04ac].contains(self) }
        /// The use cases whose response header carries the device's date-time.
        public var responseHasDateTime: Bool { [.cs06, .cs01a, .cs01b, .ecs17b, .gcs13a].contains(self) }
    }

    /// The fields of a DF header (gbcs.md §2.1).
    public struct Header: Hashable, Sendable {
        public var cra: CRA
        public var counter: UInt64
        public var originator: EUI64
        public var recipient: EUI64
        public var dateTime: Timestamp?
        public var messageCode: UInt16
        /// The supplementary remote party (the DUIS user) and its counter, when the ACB originates.
        public var supplementary: (party: EUI64, counter: UInt64)?

        public init(cra: CRA, counter: UInt64, originator: EUI64, recipient: EUI64, dateTime: Timestamp?, messageCode: UInt16,
                    supplementary: (party: EUI64, counter: UInt64)? = nil) {
            self.cra = cra; self.counter = counter; self.originator = originator; self.recipient = recipient
            self.dateTime = dateTime; self.messageCode = messageCode; self.supplementary = supplementary
        }

        public static func == (a: Header, b: Header) -> Bool {
            a.cra == b.cra && a.counter == b.counter && a.originator == b.originator && a.recipient == b.recipient && a.dateTime == b.dateTime
                && a.messageCode == b.messageCode && a.supplementary?.party == b.supplementary?.party && a.supplementary?.counter == b.supplementary?.counter
        }

        public func hash(into hasher: inout Hasher) { hasher.combine(counter); hasher.combine(messageCode) }

        /// The response header to this command: CRA 2, same counter, titles swapped, other-information copied.
        public func response(at time: Timestamp?) -> Header {
            Header(cra: .response, counter: counter, originator: recipient, recipient: originator,
                   dateTime: MessageCode(rawValue: messageCode)?.responseHasDateTime == true ? time : nil,
                   messageCode: messageCode, supplementary: supplementary)
        }
    }

    public enum Signature: Sendable, Hashable {
        /// Signature length `00`.
        case none
        /// `40` + r‖s.
        case signed([UInt8])
        /// No signature-length field at all: a pre-command, for the user to sign.
        case preCommand
    }

    /// L: the shortest of `nn`, `81 nn`, `82 nn nn`.
    public static func length(_ count: Int) -> [UInt8] {
        if count < 128 { return [UInt8(count)] }
        if count < 256 { return [0x81, UInt8(count)] }
        return [0x82, UInt8(truncatingIfNeeded: count >> 8), UInt8(truncatingIfNeeded: count)]
    }

    public static func be(_ value: UInt64, bytes: Int) -> [UInt8] { (0..<bytes).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64(bytes - 1 - $0))) } }
    static func title(_ eui: EUI64) -> [UInt8] { be(eui.rawValue, bytes: 8) }

    /// The signed part of a DF block: from the `09` after `DF` to the end of the content.
    public static func signedPart(header: Header, content: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x09, header.cra.rawValue] + be(header.counter, bytes: 8)
        out += [0x08] + title(header.originator) + [0x08] + title(header.recipient)
        if let time = header.dateTime { out += [0x0C] + dlmsDateTime(time) } else { out.append(0x00) }
        var other = be(UInt64(header.messageCode), bytes: 2)
        if let supplementary = header.supplementary { other += title(supplementary.party) + be(supplementary.counter, bytes: 8) }
        out += length(other.count) + other
        out += length(content.count) + content
        return out
    }

    public static func generalSigning(header: Header, content: [UInt8], signature: Signature) -> [UInt8] {
        var out: [UInt8] = [0xDF] + signedPart(header: header, content: content)
        switch signature {
        case .none: out.append(0x00)
        case .signed(let value): out += length(value.count) + value
        case .preCommand: break
        }
        return out
    }

    /// The lab placeholder signature (gbcs.md §2.4): SHA-256 of the signed bytes, written twice.
    public static func placeholderSignature(header: Header, content: [UInt8]) -> [UInt8] {
        let digest = Array(SHA256.hash(data: signedPart(header: header, content: content)))
        return digest + digest
    }

    /// DD around a DF block; the MAC is the lab placeholder (first 12 bytes of SHA-256 of the AAD)
    /// unless one is given.
    public static func generalCiphering(_ block: [UInt8], mac: [UInt8]? = nil) -> [UInt8] {
        let aad: [UInt8] = [0x11, 0, 0, 0, 0, 0] + block
        let tag = mac ?? Array(Array(SHA256.hash(data: aad)).prefix(12))
        return [0xDD, 0, 0, 0, 0, 0, 0] + length(5 + block.count + 12) + [0x11, 0, 0, 0, 0] + block + tag
    }

    /// A device's response in the form its message code takes: bare signed DF for critical codes,
    /// else DD around an unsigned DF.
    public static func response(header: Header, content: [UInt8]) -> [UInt8] {
        if MessageCode(rawValue: header.messageCode)?.criticalResponse == true {
            return generalSigning(header: header, content: content, signature: .signed(placeholderSignature(header: header, content: content)))
        }
        return generalCiphering(generalSigning(header: header, content: content, signature: .none))
    }

    // MARK: building blocks

    /// DLMS date-time, 12 bytes: weekday, hundredths, deviation and status unspecified as the corpus has them.
    public static func dlmsDateTime(_ time: Timestamp) -> [UInt8] {
        let c = civil(time)
        return be(UInt64(c.year), bytes: 2) + [UInt8(c.month), UInt8(c.day), 0xFF, UInt8(c.hour), UInt8(c.minute), UInt8(c.second), 0x00, 0x80, 0x00, 0xFF]
    }

    /// ASN.1 GeneralizedTime: `18 0F YYYYMMDDhhmmssZ`.
    public static func generalizedTime(_ time: Timestamp) -> [UInt8] {
        let c = civil(time)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let text = "\(c.year)\(two(c.month))\(two(c.day))\(two(c.hour))\(two(c.minute))\(two(c.second))Z"
        return [0x18, 0x0F] + Array(text.utf8)
    }

    static func civil(_ time: Timestamp) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        let text = Array(Timestamp(unixMillis: time.unixMillis - time.unixMillis.mod(1000)).rfc3339.utf8)
        func number(_ range: Range<Int>) -> Int { text[range].reduce(0) { $0 * 10 + Int($1 - 48) } }
        return (number(0..<4), number(5..<7), number(8..<10), number(11..<13), number(14..<16), number(17..<19))
    }

    /// ASN.1 INTEGER, minimal two's complement.
    public static func asn1Integer(_ value: UInt64) -> [UInt8] {
        var bytes = be(value, bytes: 8)
        while bytes.count > 1, bytes[0] == 0, bytes[1] & 0x80 == 0 { bytes.removeFirst() }
        if bytes[0] & 0x80 != 0 { bytes.insert(0, at: 0) }
        return [0x02] + length(bytes.count) + bytes
    }

    static func sequence(_ content: [UInt8]) -> [UInt8] { [0x30] + length(content.count) + content }

    /// DLMS LIID: `20` ‖ the low 24 bits of the header counter.
    static func liid(_ counter: UInt64) -> [UInt8] { [0x20] + be(counter & 0xFF_FFFF, bytes: 3) }

    // MARK: payloads (gbcs.md §5)

    /// CS08 response (PPMID, HCALCS): `30 09 04 04 <version> 02 01 <rc>`.
    public static func cs08Response(version: FirmwareVersion?) -> [UInt8] {
        sequence([0x04, 0x04] + be(UInt64(version?.rawValue ?? 0), bytes: 4) + [0x02, 0x01, version == nil ? 1 : 0])
    }

    /// ECS52 response (ESME, CHF): `DA LIID 00 00 01 09 04 <version> 01 01 00`.
    public static func ecs52Response(counter: UInt64, version: FirmwareVersion) -> [UInt8] {
        [0xDA] + liid(counter) + [0x00, 0x00, 0x01, 0x09, 0x04] + be(UInt64(version.rawValue), bytes: 4) + [0x01, 0x01, 0x00]
    }

    /// GCS38 response (GSME): a Read Attributes Response of 0x0206, octet string of 4.
    public static func gcs38Response(version: FirmwareVersion) -> [UInt8] {
        [0x01, 0x09, 0x01, 0x01, 0x07, 0x02, 0x00, 0x0C, 0x08, 0x00, 0x01, 0x06, 0x02, 0x00, 0x41, 0x04] + be(UInt64(version.rawValue), bytes: 4)
    }

    /// CS06 command: the image hash, the command's counter, the execution time if future dated.
    public static func cs06Command(hash: [UInt8], counter: UInt64, execution: Timestamp?) -> [UInt8] {
        var content: [UInt8] = [0x04, 0x20] + hash + asn1Integer(counter)
        if let execution { content += generalizedTime(execution) }
        return sequence(content)
    }

    /// CS06 response executed now: rc (0 success, 1 no image, 2 hash mismatch, 3 failure) and the running version.
    public static func cs06Response(rc: UInt8, version: FirmwareVersion) -> [UInt8] {
        sequence([0x02, 0x01, rc, 0x04, 0x04] + be(UInt64(version.rawValue), bytes: 4))
    }

    /// CS06 response to a future-dated or cancelling command: NULL.
    public static let cs06Scheduled: [UInt8] = [0x05, 0x00]

    /// The 00CA alert: 8F66 / 8F67, the execution time, the command's counter, the outcome.
    public static func cs06OutcomeAlert(success: Bool, execution: Timestamp, commandCounter: UInt64, rc: UInt8, version: FirmwareVersion) -> [UInt8] {
        sequence([0x02, 0x03, 0x00, 0x8F, success ? 0x66 : 0x67] + generalizedTime(execution) + asn1Integer(commandCounter) + cs06Response(rc: rc, version: version))
    }

    /// A critical alert as gbcs.md §2.3 has it: a bare DF, CRA 3, signed by the device (the lab
    /// placeholder signature), no header date-time (§3), other-information the code alone (§4).
    public static func criticalAlert(_ code: MessageCode, device: EUI64, recipient: EUI64, counter: UInt64, content: [UInt8]) -> [UInt8] {
        let header = Header(cra: .alert, counter: counter, originator: device, recipient: recipient, dateTime: nil, messageCode: code.rawValue)
        return generalSigning(header: header, content: content, signature: .signed(placeholderSignature(header: header, content: content)))
    }

    /// CS09 content (012B, 8F8B, gbcs.md §5.3): a PPMID's own activation of a distributed image:
    /// `30 1F | 02 03 00 8F 8B | 18 0F <time> | 04 04 <version> | 02 01 <result>`, 0 success, 1 failure.
    public static func cs09Alert(time: Timestamp, version: FirmwareVersion, success: Bool) -> [UInt8] {
        sequence([0x02, 0x03, 0x00, 0x8F, 0x8B] + generalizedTime(time) + [0x04, 0x04] + be(UInt64(version.rawValue), bytes: 4) + [0x02, 0x01, success ? 0 : 1])
    }

    /// CCS08's result codes (gbcs.md §5.3).
    public enum TransferResult: UInt8, Sendable {
        case success = 0, imageDiscarded = 1, hardwareVersionMismatch = 2, transferFailure = 3
    }

    /// CCS08 content (0128, gbcs.md §5.3): the CHF reports its distribution of an image to a HAN
    /// device: `30 29 | 02 03 00 8F 8A (success) or 8F 89 (failure) | 18 0F <time> | 04 08 <device> |
    /// 04 04 <version> | 02 01 <rc>`.
    public static func ccs08Alert(time: Timestamp, device: EUI64, version: FirmwareVersion, result: TransferResult) -> [UInt8] {
        sequence([0x02, 0x03, 0x00, 0x8F, result == .success ? 0x8A : 0x89] + generalizedTime(time) + [0x04, 0x08] + title(device)
                 + [0x04, 0x04] + be(UInt64(version.rawValue), bytes: 4) + [0x02, 0x01, result.rawValue])
    }

    /// CS03 join command: method, the other device, its GBCS type.
    public static func joinCommand(method: UInt8, other: EUI64, otherType: DeviceType) -> [UInt8] {
        sequence([0x02, 0x01, method, 0x04, 0x08] + title(other) + [0x02, 0x01, otherType.rawValue])
    }

    /// CS04 unjoin command: the other device.
    public static func unjoinCommand(other: EUI64) -> [UInt8] { [0x04, 0x08] + title(other) }

    /// Join and unjoin responses: `02 01 <rc>`.
    public static func resultCode(_ rc: UInt8) -> [UInt8] { [0x02, 0x01, rc] }

    /// ECS12 / CS02-style set response: `DA LIID 00 00 01 00 01 02 <result>`.
    public static func dlmsSetResponse(counter: UInt64, result: UInt8) -> [UInt8] {
        [0xDA] + liid(counter) + [0x00, 0x00, 0x01, 0x00, 0x01, 0x02, result]
    }

    /// CS01a / CCS02-style action response: `DA LIID 00 00 01 00 01 03 <result>`.
    public static func dlmsActionResponse(counter: UInt64, result: UInt8) -> [UInt8] {
        [0xDA] + liid(counter) + [0x00, 0x00, 0x01, 0x00, 0x01, 0x03, result]
    }

    /// One CHF device-log entry of CCS06 (gbcs.md §5.8).
    public struct CHFLogEntry: Sendable, Hashable {
        public var device: EUI64
        public var lastCommunication: Timestamp
        public init(device: EUI64, lastCommunication: Timestamp) { self.device = device; self.lastCommunication = lastCommunication }
    }

    /// CCS06 response: the CHF device log as a DLMS array of 14-field structures. The radio figures
    /// are the RTDS sample's (status C8, RSSI -35/-50/-100, LQI 2/39/247, 1 hop, 0 failures,
    /// 100 successes, versions 1/1): the emulated HAN has no radio.
    public static func ccs06Response(counter: UInt64, entries: [CHFLogEntry]) -> [UInt8] {
        var data: [UInt8] = [0x01] + [UInt8(truncatingIfNeeded: entries.count)]
        for entry in entries {
            data += [0x02, 0x0E, 0x09, 0x08] + title(entry.device) + [0x04, 0x08, 0xC8]
            data += [0x0F, UInt8(bitPattern: -35), 0x0F, UInt8(bitPattern: -50), 0x0F, UInt8(bitPattern: -100)]
            data += [0x11, 2, 0x11, 39, 0x11, 247, 0x09, 0x0C] + dlmsDateTime(entry.lastCommunication)
            data += [0x11, 1, 0x11, 0, 0x11, 100, 0x11, 1, 0x11, 1]
        }
        return [0xDA] + liid(counter) + [0x00, 0x00, 0x01] + data + [0x01, 0x01, 0x00]
    }

    /// CS07 response: rc 0 and the device's join entries (EUI, GBCS type).
    public static func cs07Response(entries: [(EUI64, DeviceType)]) -> [UInt8] {
        var list: [UInt8] = []
        for (eui, type) in entries { list += sequence([0x04, 0x08] + title(eui) + [0x02, 0x01, type.rawValue]) }
        return sequence([0x02, 0x01, 0x00] + sequence(list))
    }

    // MARK: 2.2, 3.4, 4.1.1, 8.11 (gbcs.md §5.6, §5.7, §5.9)

    /// CS01b response (GSME, through the GPF): a Consumer Top Up Response component of cluster
    /// 0705: result (0 accepted, 1 invalid, 2 duplicate, 3 error), value (int32), source, credit
    /// remaining (int32, `FFFFFFFF` when refused), ZCL fields little-endian.
    public static func cs01bResponse(result: UInt8, value: Int32, source: UInt8, credit: Int32?) -> [UInt8] {
        func le(_ v: Int32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: UInt32(bitPattern: v) >> (8 * UInt32($0))) } }
        let frame: [UInt8] = [0x09, 0x00, 0x03, result] + le(value) + [source] + (credit.map(le) ?? [0xFF, 0xFF, 0xFF, 0xFF])
        return [0x01, 0x09, 0x01, 0x01, 0x07, 0x05] + be(UInt64(frame.count), bytes: 2) + frame
    }

    /// ECS16 response (ESME): the two sets (supplier name, supplier telephone number), each with
    /// null data and its result. gbcs.md gives no sample; the form is §5.0's set response [E].
    public static func ecs16Response(counter: UInt64, result: UInt8) -> [UInt8] {
        [0xDA] + liid(counter) + [0x00, 0x00, 0x02, 0x00, 0x00, 0x02, 0x02, result, 0x02, result]
    }

    /// GCS44 response (GSME): a Write Attributes Response component of cluster 0708 (Device
    /// Management) with one status (00: every attribute written). No sample in gbcs.md [E].
    public static func gcs44Response(status: UInt8) -> [UInt8] {
        [0x01, 0x09, 0x01, 0x01, 0x07, 0x08, 0x00, 0x04, 0x08, 0x00, 0x04, status]
    }

    /// CCS01 response: the register action, then the two sets (join timeout, joining enabled),
    /// each with null data. RTDS success `03 00 02 00 02 00`; its error `03 00 02 01 02 FA`.
    public static func ccs01Response(counter: UInt64, results: (action: UInt8, timeout: UInt8, enable: UInt8)) -> [UInt8] {
        [0xDA] + liid(counter) + [0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x03, 0x03, results.action, 0x02, results.timeout, 0x02, results.enable]
    }

    /// One entry of a CHF's device log as CCS07 and CS14 carry it: the device and the hash of
    /// its Trust Centre link key (nil: no link key yet, `09 00`).
    public struct CHFLogKey: Sendable, Hashable {
        public var device: EUI64
        public var linkKeyHash: [UInt8]?
        public init(device: EUI64, linkKeyHash: [UInt8]?) { self.device = device; self.linkKeyHash = linkKeyHash }
    }

    /// The CS14 alert content (8F12, CHF Device Log Changed): a DLMS data-notification whose body
    /// is CCS07's backup of the device log: `02 03 | 09 0C <read time> | 09 08 <extended PAN ID> |
    /// 01 n {02 02 09 08 <EUI> 09 10 <hash> | 09 00}`.
    public static func cs14Alert(counter: UInt64, time: Timestamp, panID: UInt64, entries: [CHFLogKey]) -> [UInt8] {
        var log: [UInt8] = [0x01] + length(entries.count)
        for entry in entries {
            log += [0x02, 0x02, 0x09, 0x08] + title(entry.device)
            if let hash = entry.linkKeyHash { log += [0x09] + length(hash.count) + hash } else { log += [0x09, 0x00] }
        }
        let body: [UInt8] = [0x02, 0x03, 0x09, 0x0C] + dlmsDateTime(time) + [0x09, 0x08] + be(panID, bytes: 8) + log
        return [0x0F] + liid(counter) + [0x00, 0x02, 0x03, 0x12, 0x8F, 0x12, 0x09, 0x0C] + dlmsDateTime(time) + body
    }

    /// An ESME's import registers (ECS17b plaintext): active import (Wh), reactive import (varh)
    /// and, on a twin-element meter, the secondary active import.
    public struct ImportRegisters: Sendable, Hashable {
        public var activeWh: UInt32
        public var reactiveVarh: UInt32
        public var secondaryActiveWh: UInt32?
        public init(activeWh: UInt32, reactiveVarh: UInt32, secondaryActiveWh: UInt32? = nil) {
            self.activeWh = activeWh; self.reactiveVarh = reactiveVarh; self.secondaryActiveWh = secondaryActiveWh
        }

        /// `02 01 02 04|05 | 06 <active> 02 02 0F 00 16 1E | 06 <reactive> 02 02 0F 00 16 20 [| 06 <secondary>]`.
        public var plaintext: [UInt8] {
            var out: [UInt8] = [0x02, 0x01, 0x02, secondaryActiveWh == nil ? 0x04 : 0x05]
            out += [0x06] + be(UInt64(activeWh), bytes: 4) + [0x02, 0x02, 0x0F, 0x00, 0x16, 0x1E]
            out += [0x06] + be(UInt64(reactiveVarh), bytes: 4) + [0x02, 0x02, 0x0F, 0x00, 0x16, 0x20]
            if let secondary = secondaryActiveWh { out += [0x06] + be(UInt64(secondary), bytes: 4) }
            return out
        }
    }

    /// ECS17b payload encryption (gbcs.md §2.2): AES-128-GCM, IV = the response's originator title
    /// ‖ `00 00 00 00`, AAD `31`, the 12-byte tag appended. Returns ciphertext ‖ tag.
    public static func ecs17bEncrypt(_ plaintext: [UInt8], key: [UInt8], originator: EUI64) throws -> [UInt8] {
        let nonce = try AES.GCM.Nonce(data: title(originator) + [0, 0, 0, 0])
        let sealed = try AES.GCM.seal(plaintext, using: SymmetricKey(data: key), nonce: nonce, authenticating: [0x31])
        return Array(sealed.ciphertext) + Array(sealed.tag.prefix(12))
    }

    /// ECS17b response (gbcs.md §5.7): the protection parameters (command counter, ESME and user
    /// titles), then the protected registers (`31 00000000` ‖ ciphertext ‖ tag), result `01 03 00`.
    /// `sealed` is ``ecs17bEncrypt(_:key:originator:)``'s output; nil answers the failure form.
    public static func ecs17bResponse(counter: UInt64, esme: EUI64, user: EUI64, sealed: [UInt8]?) -> [UInt8] {
        guard let sealed else { return dlmsActionResponse(counter: counter, result: 1) }
        let protection: [UInt8] = [0x02, 0x02, 0x01, 0x01, 0x02, 0x02, 0x16, 0x02, 0x02, 0x05, 0x09, 0x09, 0x04] + be(counter, bytes: 8)
            + [0x09, 0x08] + title(esme) + [0x09, 0x08] + title(user) + [0x09, 0x00]
            + [0x02, 0x02, 0x16, 0x02, 0x02, 0x02, 0x09, 0x01, 0x02, 0x09, 0x00]
        let data: [UInt8] = [0x31, 0, 0, 0, 0] + sealed
        return [0xDA] + liid(counter) + [0x00, 0x00, 0x01] + protection + [0x09] + length(data.count) + data + [0x01, 0x03, 0x00]
    }

    // MARK: commands for local delivery (CV 2)

    /// CS01a command (gbcs.md §5.6): action class 115, 0-0:19.40.0.255, method 1, the UTRN's 20 digits.
    public static func cs01aCommand(counter: UInt64, utrn: String) -> [UInt8] {
        let digits = Array(utrn.utf8)
        return [0xD9] + liid(counter) + [0x00, 0x01, 0x03, 0x00, 0x73, 0x00, 0x00, 0x13, 0x28, 0x00, 0xFF, 0x01, 0x01, 0x09] + length(digits.count) + digits
    }

    /// CS01b command (gbcs.md §5.6): a Consumer Top Up component of cluster 0705 (originating
    /// device 00, the UTRN as an octet string).
    public static func cs01bCommand(utrn: String) -> [UInt8] {
        let digits = Array(utrn.utf8)
        let frame: [UInt8] = [0x01, 0x00, 0x04, 0x00, UInt8(truncatingIfNeeded: digits.count)] + digits
        return [0x01, 0x09, 0x01, 0x01, 0x07, 0x05] + be(UInt64(frame.count), bytes: 2) + frame
    }

    /// ECS17b command (gbcs.md §5.7): action class 30, 0-0:43.2.8.255, method 1 (get protected
    /// attributes) of 0-0:94.44.34.10 attribute 2, with the protection parameters (counter, user, ESME).
    public static func ecs17bCommand(counter: UInt64, user: EUI64, esme: EUI64) -> [UInt8] {
        let objects: [UInt8] = [0x01, 0x01, 0x02, 0x05, 0x12, 0x00, 0x01, 0x09, 0x06, 0x00, 0x00, 0x5E, 0x2C, 0x22, 0x0A, 0x0F, 0x02, 0x12, 0x00, 0x00,
                                0x02, 0x02, 0x16, 0x00, 0x00]
        let protection: [UInt8] = [0x01, 0x01, 0x02, 0x02, 0x16, 0x02, 0x02, 0x05, 0x09, 0x09, 0x04] + be(counter, bytes: 8)
            + [0x09, 0x08] + title(user) + [0x09, 0x08] + title(esme) + [0x09, 0x00]
            + [0x02, 0x02, 0x16, 0x02, 0x02, 0x02, 0x09, 0x01, 0x02, 0x09, 0x00]
        return [0xD9] + liid(counter) + [0x00, 0x01, 0x03, 0x00, 0x1E, 0x00, 0x00, 0x2B, 0x02, 0x08, 0xFF, 0x01, 0x01, 0x02, 0x02] + objects + protection
    }
}
