#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SMETSCore
import SMETSRPC
import Testing

/// One HTTP/1.1 exchange over a Unix socket: the request as bytes, the status and body back.
func httpOverUnix(_ path: String, method: String = "POST", target: String, contentType: String? = "application/xml", body: String) throws -> (status: Int, body: String) {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b }; raw[path.utf8.count] = 0 }
    let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
    guard connected == 0 else { throw CocoaError(.fileNoSuchFile) }
    var head = "\(method) \(target) HTTP/1.1\r\nHost: smetsd\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n"
    if let contentType { head += "Content-Type: \(contentType)\r\n" }
    let bytes = Array((head + "\r\n" + body).utf8)
    var sent = 0
    while sent < bytes.count {
        let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { break }  // the server may refuse (413) before reading everything
        sent += n
    }
    var reply: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        reply += buffer[0..<n]
    }
    let text = String(decoding: reply, as: UTF8.self)
    let parts = text.components(separatedBy: "\r\n\r\n")
    let status = Int(parts[0].split(separator: " ").dropFirst().first ?? "") ?? 0
    return (status, parts.dropFirst().joined(separator: "\r\n\r\n"))
}

/// A Receive Response service on a Unix socket: answers 204 and keeps what it was sent.
final class ReceiveResponseStub: @unchecked Sendable {
    let path: String
    private let lock = NSLock()
    private var received: [String] = []
    private let fd: Int32

    init(path: String) {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b }; raw[path.utf8.count] = 0 }
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        listen(fd, 16)
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 { return }
                var data: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                    if n <= 0 { break }
                    data += buffer[0..<n]
                    let text = String(decoding: data, as: UTF8.self)
                    if let split = text.range(of: "\r\n\r\n"),
                       let lengthLine = text[..<split.lowerBound].split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
                       let length = Int(lengthLine.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)),
                       text.utf8.count - text[..<split.upperBound].utf8.count >= length {
                        lock.withLock { received.append(String(text[split.upperBound...])) }
                        break
                    }
                }
                let answer = Array("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n".utf8)
                _ = answer.withUnsafeBytes { Glibc.send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                close(client)
            }
        }
    }

    var documents: [String] { lock.withLock { received } }
    func stop() { shutdown(fd, Int32(SHUT_RDWR)); close(fd); unlink(path) }
}

/// The DUIS front of the real daemon, over duis.sock: requests written from duis.md, responses
/// checked field by field.
@Suite(.serialized) struct DUISTests {
    static let supplier = "90-B3-D5-1F-30-01-00-00", dcc = "90-B3-D5-1F-30-00-00-02"
    static let ppmid = "00-DB-12-34-56-78-00-05", esme = "00-DB-12-34-56-78-00-02", ihd = "00-DB-12-34-56-78-00-06"

    static func request(target: String, counter: Int, cv: Int, reference: String, variant: String, body: String) -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header>
        <sr:RequestID>\(supplier):\(target):\(counter)</sr:RequestID><sr:CommandVariant>\(cv)</sr:CommandVariant>
        <sr:ServiceReference>\(reference)</sr:ServiceReference><sr:ServiceReferenceVariant>\(variant)</sr:ServiceReferenceVariant>
        </sr:Header><sr:Body>\(body)</sr:Body></sr:Request>
        """
    }

    func element(_ name: String, in xml: String) -> String? {
        guard let start = xml.range(of: "<sr:\(name)>"), let end = xml.range(of: "</sr:\(name)>", range: start.upperBound..<xml.endIndex) else { return nil }
        return String(xml[start.upperBound..<end.lowerBound])
    }

    @Test func readFirmwareVersionThenInventoryEndToEnd() throws {
        let stub = ReceiveResponseStub(path: DaemonHarness.scratch("duis-rr") + "/receive.sock")
        defer { stub.stop() }
        let lab = try DaemonHarness.copyOfLab(settings: #"{"duis": {"receiveResponseURL": "\#(stub.path)"}}"#)
        let daemon = try DaemonHarness(lab: lab).start()
        defer { _ = daemon.stop() }
        let socket = daemon.runtimeDirectory + "/duis.sock"

        // 11.2 to a PPMID: sync I99 (RequestID only), then the device response (both IDs, CS08 payload).
        let sync = try httpOverUnix(socket, target: "/api/v1/serviceS",
                                    body: Self.request(target: Self.ppmid, counter: 1001, cv: 1, reference: "11.2", variant: "11.2", body: "<sr:ReadFirmwareVersion/>"))
        #expect(sync.status == 200)
        #expect(element("ResponseCode", in: sync.body) == "I99")
        #expect(element("RequestID", in: sync.body) == "\(Self.supplier):\(Self.ppmid):1001")
        #expect(element("ResponseID", in: sync.body) == nil)
        #expect(element("ServiceReferenceVariant", in: sync.body) == "11.2")

        var kept: [JSONValue] = []
        for _ in 0..<100 where kept.isEmpty {
            kept = try daemon.call("duis.responses", ["requestID": .string("\(Self.supplier):\(Self.ppmid):1001")])["responses"]?.arrayValue ?? []
            if kept.isEmpty { usleep(50_000) }
        }
        let xml = try #require(kept.first?["xml"]?.stringValue)
        #expect(element("ResponseCode", in: xml) == "I0")
        #expect(element("ResponseID", in: xml) == "\(Self.ppmid):\(Self.supplier):1001")
        let payload = try #require(Data(base64Encoded: element("GBCSPayload", in: xml) ?? "").map { [UInt8]($0) })
        // DD wrapper, CRA 2, PPMID -> ACB, code 0129 with the user's counter 1001 as supplementary, the firmware the PPMID runs.
        #expect(payload.first == 0xDD && payload[13] == 0xDF && payload[15] == 0x02)
        #expect(Array(payload[24...32]) == [0x08, 0x00, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x00, 0x05])
        #expect(Array(payload[42...47]) == [0x00, 0x12, 0x01, 0x29, 0x90, 0xB3])
        #expect(Array(payload[54...61]) == [0, 0, 0, 0, 0, 0, 0x03, 0xE9])
        #expect(Array(payload[62...74]) == [0x0B, 0x30, 0x09, 0x04, 0x04, 0x01, 0x02, 0x03, 0x00, 0x02, 0x01, 0x00, 0x00])

        // Delivered to the Receive Response URL too.
        for _ in 0..<100 where stub.documents.isEmpty { usleep(50_000) }
        #expect(stub.documents.first.map { element("ResponseID", in: $0) } == "\(Self.ppmid):\(Self.supplier):1001")

        // 8.2 by DeviceID: I0 with the DCC's view of the premises, target first.
        let inventory = try httpOverUnix(socket, target: "/api/v1/serviceD",
                                         body: Self.request(target: Self.dcc, counter: 1002, cv: 8, reference: "8.2", variant: "8.2",
                                                            body: "<sr:ReadInventory><sr:DeviceID>\(Self.ppmid)</sr:DeviceID></sr:ReadInventory>"))
        #expect(element("ResponseCode", in: inventory.body) == "I0")
        #expect(element("DeviceID", in: inventory.body) == Self.ppmid)
        #expect(element("DeviceType", in: inventory.body) == "PPMID")
        #expect(element("DeviceStatus", in: inventory.body) == "Commissioned")
        #expect(element("DeviceFirmwareVersion", in: inventory.body) == "01020300")

        // 12.2 then 8.2 of the pre-notified device: Pending.
        let notice = try httpOverUnix(socket, target: "/api/v1/serviceD", body: Self.request(target: Self.dcc, counter: 1003, cv: 8, reference: "12.2", variant: "12.2", body: """
            <sr:DevicePrenotification><sr:DeviceID>00-1A-2B-FF-FE-00-77-01</sr:DeviceID><sr:DeviceManufacturer>1A2B</sr:DeviceManufacturer><sr:DeviceModel>0000C0DE</sr:DeviceModel><sr:DeviceType>PPMID</sr:DeviceType><sr:SMETSCHTSVersion>SMETS V5.2</sr:SMETSCHTSVersion><sr:FirmwareVersion>00020000</sr:FirmwareVersion></sr:DevicePrenotification>
            """))
        #expect(element("ResponseCode", in: notice.body) == "I99")
        let pending = try httpOverUnix(socket, target: "/api/v1/serviceD", body: Self.request(target: Self.dcc, counter: 1004, cv: 8, reference: "8.2", variant: "8.2",
                                                                                             body: "<sr:ReadInventory><sr:DeviceID>00-1A-2B-FF-FE-00-77-01</sr:DeviceID></sr:ReadInventory>"))
        #expect(element("DeviceStatus", in: pending.body) == "Pending")
        #expect(element("DeviceModel", in: pending.body) == "0000C0DE")
    }

    @Test func refusalsInTheSpecsOrder() throws {
        let daemon = try DaemonHarness().start()
        defer { _ = daemon.stop() }
        let socket = daemon.runtimeDirectory + "/duis.sock"
        let read = Self.request(target: Self.ppmid, counter: 1, cv: 1, reference: "11.2", variant: "11.2", body: "<sr:ReadFirmwareVersion/>")

        // HTTP level: path, method, media type, size, DOCTYPE, entity, inconsistency; no DUIS body, never file content.
        #expect(try httpOverUnix(socket, target: "/api/v1/other", body: read).status == 404)
        #expect(try httpOverUnix(socket, method: "PUT", target: "/api/v1/serviceS", body: read).status == 405)
        #expect(try httpOverUnix(socket, target: "/api/v1/serviceS", contentType: "application/json", body: read).status == 415)
        #expect(try httpOverUnix(socket, target: "/api/v1/serviceS", body: read + String(repeating: " ", count: 17 << 20)).status == 413)
        let xxe = try httpOverUnix(socket, target: "/api/v1/serviceS",
                                   body: #"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#)
        #expect(xxe.status == 400 && !xxe.body.contains("root:"))
        #expect(try httpOverUnix(socket, target: "/api/v1/serviceS", body: "<r>&x;</r>").status == 400)
        #expect(try httpOverUnix(socket, target: "/api/v1/serviceS",
                                 body: Self.request(target: Self.ppmid, counter: 1, cv: 1, reference: "11.3", variant: "11.2", body: "<sr:ReadFirmwareVersion/>")).status == 400)
        #expect(try httpOverUnix(socket, target: "/api/v1/serviceS",
                                 body: Self.request(target: Self.ppmid, counter: 1, cv: 1, reference: "7.1", variant: "7.1", body: "<sr:X/>")).status == 501)

        // DUIS level, in order: E13 (path), E12 (CV for the variant), E19 (unknown target), E11 (type), E5 (status).
        func code(_ path: String, _ document: String) throws -> String? { element("ResponseCode", in: try httpOverUnix(socket, target: path, body: document).body) }
        #expect(try code("/api/v1/serviceT", read) == "E13")
        #expect(try code("/api/v1/serviceS", Self.request(target: Self.ppmid, counter: 2, cv: 5, reference: "11.2", variant: "11.2", body: "<sr:ReadFirmwareVersion/>")) == "E12")
        #expect(try code("/api/v1/serviceS", Self.request(target: "00-DB-12-34-56-78-99-99", counter: 3, cv: 1, reference: "11.2", variant: "11.2", body: "<sr:ReadFirmwareVersion/>")) == "E19")
        #expect(try code("/api/v1/serviceS", Self.request(target: Self.ihd, counter: 4, cv: 1, reference: "11.2", variant: "11.2", body: "<sr:ReadFirmwareVersion/>")) == "E11")
        #expect(try code("/api/v1/serviceS", Self.request(target: "00-DB-12-34-56-78-00-07", counter: 5, cv: 1, reference: "11.2", variant: "11.2", body: "<sr:ReadFirmwareVersion/>")) == "E5")
        #expect(try code("/api/v1/serviceD", Self.request(target: Self.ppmid, counter: 6, cv: 8, reference: "8.2", variant: "8.2",
                                                         body: "<sr:ReadInventory><sr:DeviceID>\(Self.ppmid)</sr:DeviceID></sr:ReadInventory>")) == "E19")
        // CV 2 (to serviceD): I0 with the command for local delivery, nothing asynchronous.
        let local = try httpOverUnix(socket, target: "/api/v1/serviceD",
                                     body: Self.request(target: Self.ppmid, counter: 7, cv: 2, reference: "11.2", variant: "11.2", body: "<sr:ReadFirmwareVersion/>")).body
        #expect(element("ResponseCode", in: local) == "I0")
        let command = try #require(Data(base64Encoded: element("GBCSPayload", in: local) ?? "").map { [UInt8]($0) })
        #expect(command.first == 0xDD && command[15] == 0x01 && Array(command.suffix(16).prefix(4)) == [0x02, 0x05, 0x00, 0x00])
        #expect(daemon.logText.contains("duis.refused"))
        #expect(try daemon.call("daemon.status")["ready"]?.boolValue == true)
    }

    func asyncResponse(_ daemon: DaemonHarness, _ requestID: String) throws -> String {
        for _ in 0..<200 {
            if let xml = try daemon.call("duis.responses", ["requestID": .string(requestID)])["responses"]?.arrayValue?.first?["xml"]?.stringValue { return xml }
            usleep(50_000)
        }
        throw CocoaError(.fileReadUnknown)
    }

    func payload(_ xml: String) throws -> [UInt8] {
        try #require(Data(base64Encoded: element("GBCSPayload", in: xml) ?? "").map { [UInt8]($0) })
    }

    /// CV 4 then the signed pre-command (CV 5): join a whitelisted PPMID through its ESME (8.7.1),
    /// then unjoin it non-critically (8.8.2); an orphan SignedPreCommand gets E12.
    @Test func criticalFlowJoinThenUnjoin() throws {
        let daemon = try DaemonHarness().start()
        defer { _ = daemon.stop() }
        let socket = daemon.runtimeDirectory + "/duis.sock"
        let spare = "00-DB-12-34-56-78-00-07"
        let join = Self.request(target: Self.esme, counter: 2001, cv: 4, reference: "8.7", variant: "8.7.1",
                                body: "<sr:JoinServiceCritical><sr:OtherDeviceID>\(spare)</sr:OtherDeviceID></sr:JoinServiceCritical>")
        let transformed = try httpOverUnix(socket, target: "/api/v1/serviceT", body: join)
        #expect(element("ResponseCode", in: transformed.body) == "I0")
        #expect(element("GBCSVersion", in: transformed.body) == "4.2")
        let pre = try payload(transformed.body)
        // DF, CRA 1, counter 2001, supplier -> ESME, no date-time, code 000D, join content, and no signature-length field.
        #expect(Array(pre.prefix(3)) == [0xDF, 0x09, 0x01] && Array(pre[3...10]) == [0, 0, 0, 0, 0, 0, 0x07, 0xD1])
        #expect(Array(pre[29...32]) == [0x00, 0x02, 0x00, 0x0D])
        #expect(Array(pre.suffix(19)) == [0x12, 0x30, 0x10, 0x02, 0x01, 0x00, 0x04, 0x08, 0x00, 0xDB, 0x12, 0x34, 0x56, 0x78, 0x00, 0x07, 0x02, 0x01, 0x05])

        let orphan = Self.request(target: Self.esme, counter: 2999, cv: 5, reference: "8.7", variant: "8.7.1",
                                  body: "<sr:SignedPreCommand><sr:GBCSPayload>\(Data(pre + [0x40] + [UInt8](repeating: 1, count: 64)).base64EncodedString())</sr:GBCSPayload></sr:SignedPreCommand>")
        #expect(element("ResponseCode", in: try httpOverUnix(socket, target: "/api/v1/serviceS", body: orphan).body) == "E12")

        let signed = Self.request(target: Self.esme, counter: 2001, cv: 5, reference: "8.7", variant: "8.7.1",
                                  body: "<sr:SignedPreCommand><sr:GBCSPayload>\(Data(pre + [0x40] + [UInt8](repeating: 1, count: 64)).base64EncodedString())</sr:GBCSPayload></sr:SignedPreCommand>")
        #expect(element("ResponseCode", in: try httpOverUnix(socket, target: "/api/v1/serviceS", body: signed).body) == "I99")
        let response = try asyncResponse(daemon, "\(Self.supplier):\(Self.esme):2001")
        #expect(element("ResponseCode", in: response) == "I0")
        let answer = try payload(response)
        // A critical code's response: bare DF, CRA 2, ESME -> supplier, content 02 01 00, signed (40 + 64).
        #expect(answer[0] == 0xDF && answer[2] == 0x02 && Array(answer[3...10]) == [0, 0, 0, 0, 0, 0, 0x07, 0xD1])
        #expect(Array(answer[30...33]) == [0x02, 0x00, 0x0D, 0x03] && Array(answer[34...36]) == [0x02, 0x01, 0x00] && answer[37] == 0x40 && answer.count == 102)
        #expect(try daemon.call("devices.get", ["id": .string(spare)])["status"]?.stringValue == "Commissioned")
        // The same signed pre-command again: already used.
        #expect(element("ResponseCode", in: try httpOverUnix(socket, target: "/api/v1/serviceS", body: signed).body) == "E12")

        let unjoin = Self.request(target: spare, counter: 2002, cv: 1, reference: "8.8", variant: "8.8.2",
                                  body: "<sr:UnjoinServiceNonCritical><sr:OtherDeviceID>\(Self.esme)</sr:OtherDeviceID></sr:UnjoinServiceNonCritical>")
        #expect(element("ResponseCode", in: try httpOverUnix(socket, target: "/api/v1/serviceS", body: unjoin).body) == "I99")
        let left = try payload(try asyncResponse(daemon, "\(Self.supplier):\(spare):2002"))
        // 000F to a PPMID: ACB-originated on the user's behalf, so 18 bytes of other-information; bare signed DF back.
        #expect(left[0] == 0xDF && Array(left[30...33]) == [0x12, 0x00, 0x0F, 0x90])
        #expect(try daemon.call("devices.get", ["id": .string(spare)])["status"]?.stringValue == "Whitelisted")
    }

    /// 11.3 through the critical flow to an ESME, and 3.2 driving the premises' Change of Tenancy.
    @Test func activateFirmwareAndRestrictAccess() throws {
        let daemon = try DaemonHarness().start()
        defer { _ = daemon.stop() }
        let socket = daemon.runtimeDirectory + "/duis.sock"
        let hash = String(repeating: "AB", count: 32)
        let activate = Self.request(target: Self.esme, counter: 3001, cv: 4, reference: "11.3", variant: "11.3",
                                    body: "<sr:ActivateFirmware><sr:FirmwareHash>\(hash)</sr:FirmwareHash></sr:ActivateFirmware>")
        let pre = try payload(try httpOverUnix(socket, target: "/api/v1/serviceT", body: activate).body)
        #expect(Array(pre.suffix(41)) == [0x28, 0x30, 0x26, 0x04, 0x20] + [UInt8](repeating: 0xAB, count: 32) + [0x02, 0x02, 0x0B, 0xB9])
        let signed = Self.request(target: Self.esme, counter: 3001, cv: 5, reference: "11.3", variant: "11.3",
                                  body: "<sr:SignedPreCommand><sr:GBCSPayload>\(Data(pre + [0x40] + [UInt8](repeating: 2, count: 64)).base64EncodedString())</sr:GBCSPayload></sr:SignedPreCommand>")
        #expect(element("ResponseCode", in: try httpOverUnix(socket, target: "/api/v1/serviceS", body: signed).body) == "I99")
        let answer = try payload(try asyncResponse(daemon, "\(Self.supplier):\(Self.esme):3001"))
        // CS06 response: bare signed DF with the device's date-time; the ESME holds no image (rc 1) and runs its firmware.
        #expect(answer[0] == 0xDF && answer[29] == 0x0C && Array(answer[42...44]) == [0x02, 0x00, 0x12])
        #expect(Array(answer[45...47]) == [0x0B, 0x30, 0x09] && answer[50] != 0)

        let restrict = Self.request(target: Self.esme, counter: 3002, cv: 1, reference: "3.2", variant: "3.2",
                                    body: "<sr:RestrictAccessForChangeOfTenancy><sr:RestrictionDateTime>2020-01-01T00:00:00Z</sr:RestrictionDateTime></sr:RestrictAccessForChangeOfTenancy>")
        #expect(element("ResponseCode", in: try httpOverUnix(socket, target: "/api/v1/serviceS", body: restrict).body) == "I99")
        let cleared = try payload(try asyncResponse(daemon, "\(Self.supplier):\(Self.esme):3002"))
        #expect(cleared[0] == 0xDD && Array(cleared.dropLast(13).suffix(13)) == [0x0C, 0xDA, 0x20, 0x00, 0x0B, 0xBA, 0x00, 0x00, 0x01, 0x00, 0x01, 0x02, 0x00])
        #expect(daemon.logText.contains("tenancy.changed") || daemon.logText.contains("tenancy.scheduled"))
    }

    /// duis.md §5 on the virtual clock: a DSP-held 11.2 answers when the clock reaches its time, a
    /// cancelled one never does, and a future-dated 11.3 answers NULL now and raises 8F66/8F67 then.
    @Test func futureDatingOnTheVirtualClock() throws {
        let daemon = try DaemonHarness().start()
        defer { _ = daemon.stop() }
        let socket = daemon.runtimeDirectory + "/duis.sock"
        let now = try #require(Timestamp(rfc3339: try daemon.call("clock.get")["now"]?.stringValue ?? ""))
        let tomorrow = now.adding(seconds: 86_400).rfc3339
        func read(_ counter: Int, _ time: String) -> String {
            Self.request(target: Self.ppmid, counter: counter, cv: 1, reference: "11.2", variant: "11.2",
                         body: "<sr:ReadFirmwareVersion><sr:ExecutionDateTime>\(time)</sr:ExecutionDateTime></sr:ReadFirmwareVersion>")
        }
        func responses(_ counter: Int, target: String = Self.ppmid) throws -> [JSONValue] {
            try daemon.call("duis.responses", ["requestID": .string("\(Self.supplier):\(target):\(counter)")])["responses"]?.arrayValue ?? []
        }
        // 4001 is held, then cancelled by 4003; 4002, sent after the cancellation, stays held.
        #expect(element("ResponseCode", in: try httpOverUnix(socket, target: "/api/v1/serviceS", body: read(4001, tomorrow)).body) == "I99")
        #expect(element("ResponseCode", in: try httpOverUnix(socket, target: "/api/v1/serviceS", body: read(4003, "3000-12-31T00:00:00Z")).body) == "I99")
        #expect(element("ResponseCode", in: try httpOverUnix(socket, target: "/api/v1/serviceS", body: read(4002, tomorrow)).body) == "I99")

        let hash = String(repeating: "CD", count: 32)
        let activate = Self.request(target: Self.esme, counter: 4004, cv: 4, reference: "11.3", variant: "11.3",
                                    body: "<sr:ActivateFirmware><sr:ExecutionDateTime>\(tomorrow)</sr:ExecutionDateTime><sr:FirmwareHash>\(hash)</sr:FirmwareHash></sr:ActivateFirmware>")
        let pre = try payload(try httpOverUnix(socket, target: "/api/v1/serviceT", body: activate).body)
        #expect(Array(pre.suffix(17).prefix(2)) == [0x18, 0x0F], "the execution time is in the command")
        let signed = Self.request(target: Self.esme, counter: 4004, cv: 5, reference: "11.3", variant: "11.3",
                                  body: "<sr:SignedPreCommand><sr:GBCSPayload>\(Data(pre + [0x40] + [UInt8](repeating: 3, count: 64)).base64EncodedString())</sr:GBCSPayload></sr:SignedPreCommand>")
        #expect(element("ResponseCode", in: try httpOverUnix(socket, target: "/api/v1/serviceS", body: signed).body) == "I99")
        let accepted = try payload(try asyncResponse(daemon, "\(Self.supplier):\(Self.esme):4004"))
        #expect(Array(accepted[45...47]) == [0x02, 0x05, 0x00], "future dated: the device answers NULL")

        usleep(300_000)
        #expect(try responses(4001).isEmpty && responses(4002).isEmpty, "held by the DCC until its time")
        _ = try daemon.call("clock.advance", ["seconds": 172_800])
        for _ in 0..<100 where try responses(4002).isEmpty || responses(4004, target: Self.esme).count < 2 { usleep(50_000) }
        #expect(try responses(4002).count == 1)
        #expect(try responses(4001).isEmpty && responses(4003).isEmpty, "cancelled, and the cancellation has no device response")
        let alerts = try responses(4004, target: Self.esme)
        #expect(alerts.count == 2)
        let alert = try #require(alerts.last?["xml"]?.stringValue)
        // The ESME holds no image: 8F67 with rc 1, in an I0 ResponseMessage.
        #expect(element("FutureDatedAlertCode", in: alert) == "8F67")
        #expect(element("InstructionNumber", in: alert) == "1" && element("TotalCommandInstructions", in: alert) == "1")
        let bytes = try payload(alert)
        #expect(bytes[0] == 0xDF && bytes[2] == 0x03 && Array(bytes[30...32]) == [0x02, 0x00, 0xCA])
        #expect(Array(bytes[34...39]) == [0x30, 0x25, 0x02, 0x03, 0x00, 0x8F] && bytes[40] == 0x67)
    }

    /// Held work survives a restart (duis.md §5, §2): a DSP-held 11.2 fires once when the clock
    /// reaches its time on the restarted daemon, and not again after another restart; a cancelled one
    /// stays cancelled; a CV 4 pre-command handed out before the restart is completed by its CV 5 after.
    @Test func heldWorkSurvivesARestart() throws {
        let first = try DaemonHarness().start()
        defer { _ = first.stop() }
        let socket = first.runtimeDirectory + "/duis.sock"
        let now = try #require(Timestamp(rfc3339: try first.call("clock.get")["now"]?.stringValue ?? ""))
        let tomorrow = now.adding(seconds: 86_400).rfc3339
        func read(_ target: String, _ counter: Int, _ time: String) -> String {
            Self.request(target: target, counter: counter, cv: 1, reference: "11.2", variant: "11.2",
                         body: "<sr:ReadFirmwareVersion><sr:ExecutionDateTime>\(time)</sr:ExecutionDateTime></sr:ReadFirmwareVersion>")
        }
        #expect(element("ResponseCode", in: try httpOverUnix(socket, target: "/api/v1/serviceS", body: read(Self.ppmid, 4101, tomorrow)).body) == "I99")
        #expect(element("ResponseCode", in: try httpOverUnix(socket, target: "/api/v1/serviceS", body: read(Self.esme, 4102, tomorrow)).body) == "I99")
        #expect(element("ResponseCode", in: try httpOverUnix(socket, target: "/api/v1/serviceS", body: read(Self.esme, 4103, "3000-12-31T00:00:00Z")).body) == "I99")
        let spare = "00-DB-12-34-56-78-00-07"
        let join = Self.request(target: Self.esme, counter: 4104, cv: 4, reference: "8.7", variant: "8.7.1",
                                body: "<sr:JoinServiceCritical><sr:OtherDeviceID>\(spare)</sr:OtherDeviceID></sr:JoinServiceCritical>")
        let pre = try payload(try httpOverUnix(socket, target: "/api/v1/serviceT", body: join).body)
        _ = first.stop()

        func responses(_ daemon: DaemonHarness, _ target: String, _ counter: Int) throws -> [JSONValue] {
            try daemon.call("duis.responses", ["requestID": .string("\(Self.supplier):\(target):\(counter)")])["responses"]?.arrayValue ?? []
        }
        let second = try DaemonHarness(lab: first.labDirectory, state: first.stateDirectory, runtime: first.runtimeDirectory).start()
        defer { _ = second.stop() }
        #expect(second.logText.contains("held DUIS work restored: 2"), "the held 11.2 and the pre-command")
        let signed = Self.request(target: Self.esme, counter: 4104, cv: 5, reference: "8.7", variant: "8.7.1",
                                  body: "<sr:SignedPreCommand><sr:GBCSPayload>\(Data(pre + [0x40] + [UInt8](repeating: 3, count: 64)).base64EncodedString())</sr:GBCSPayload></sr:SignedPreCommand>")
        #expect(element("ResponseCode", in: try httpOverUnix(second.runtimeDirectory + "/duis.sock", target: "/api/v1/serviceS", body: signed).body) == "I99")
        #expect(!(try asyncResponse(second, "\(Self.supplier):\(Self.esme):4104")).isEmpty)
        usleep(300_000)
        #expect(try responses(second, Self.ppmid, 4101).isEmpty, "still held until its time")
        _ = try second.call("clock.advance", ["seconds": 172_800])
        for _ in 0..<100 where try responses(second, Self.ppmid, 4101).isEmpty { usleep(50_000) }
        usleep(300_000)
        #expect(try responses(second, Self.ppmid, 4101).count == 1)
        #expect(try responses(second, Self.esme, 4102).isEmpty, "cancelled before the restart")
        _ = second.stop()

        // Carried out: gone from the store, so a third start neither restores nor fires it again.
        let third = try DaemonHarness(lab: first.labDirectory, state: first.stateDirectory, runtime: first.runtimeDirectory).start()
        defer { _ = third.stop() }
        _ = try third.call("clock.advance", ["seconds": 172_800])
        usleep(500_000)
        #expect(try responses(third, Self.ppmid, 4101).isEmpty)
        #expect(!third.logText.contains("held DUIS work restored"))
        // The pre-command was used: its CV 5 again finds nothing.
        #expect(element("ResponseCode", in: try httpOverUnix(third.runtimeDirectory + "/duis.sock", target: "/api/v1/serviceS", body: signed).body) == "E12")
    }

    /// 11.4: W110401 naming the devices left out and why; the accepted PPMID runs the new version after.
    @Test func updatePPMIDFirmwareWarnsAndDistributes() throws {
        let daemon = try DaemonHarness().start()
        defer { _ = daemon.stop() }
        let socket = daemon.runtimeDirectory + "/duis.sock"
        let image = try FirmwareTests.build()
        // 00-05 takes it; 00-DB-12-34-56-79-00-05 is in a SMETS1 system (Requirement 7); 00-07 is only whitelisted; 99-99 unknown.
        let update = Self.request(target: Self.dcc, counter: 5001, cv: 8, reference: "11.4", variant: "11.4", body: """
            <sr:UpdatePPMIDFirmware><sr:FirmwareImage>\(Data(image).base64EncodedString())</sr:FirmwareImage><sr:FirmwareVersion>01030000</sr:FirmwareVersion>
            <sr:DeviceIDList>\(Self.ppmid),00-DB-12-34-56-79-00-05,00-DB-12-34-56-78-00-07,00-DB-12-34-56-78-99-99</sr:DeviceIDList></sr:UpdatePPMIDFirmware>
            """)
        let reply = try httpOverUnix(socket, target: "/api/v1/serviceD", body: update).body
        #expect(element("ResponseCode", in: reply) == "W110401")
        #expect(element("InvalidDeviceIDList", in: reply) == "00-DB-12-34-56-78-99-99")
        #expect(element("NotCommissionedDeviceIDList", in: reply) == "00-DB-12-34-56-78-00-07")
        #expect(element("NotApplicableFirmwareDeviceIDList", in: reply) == "00-DB-12-34-56-79-00-05")
        var version: String?
        for _ in 0..<200 where version != "01030000" {
            version = try daemon.call("devices.get", ["id": .string(Self.ppmid)])["firmwareVersion"]?.stringValue
            if version != "01030000" { usleep(50_000) }
        }
        #expect(version == "01030000")
        #expect(try daemon.call("devices.get", ["id": "00-DB-12-34-56-79-00-05"])["firmwareVersion"]?.stringValue == "01020300")
    }

    /// 8.9: the hub's CCS06 device log lists the devices joined to it; a PPMID's CS07 its HAN partners.
    @Test func readDeviceLogs() throws {
        let daemon = try DaemonHarness().start()
        defer { _ = daemon.stop() }
        let socket = daemon.runtimeDirectory + "/duis.sock"
        let hub = "00-DB-12-34-56-78-00-01"
        let joined = try daemon.call("devices.list", ["premises": "P0001", "limit": 100])["devices"]?.arrayValue?
            .filter { $0["hub"]?.stringValue == hub }.compactMap { $0["id"]?.stringValue } ?? []
        #expect(!joined.isEmpty)
        for (target, counter) in [(hub, 6001), (Self.ppmid, 6002)] {
            let read = Self.request(target: target, counter: counter, cv: 1, reference: "8.9", variant: "8.9", body: "<sr:ReadDeviceLog/>")
            #expect(element("ResponseCode", in: try httpOverUnix(socket, target: "/api/v1/serviceS", body: read).body) == "I99")
        }
        let log = try payload(try asyncResponse(daemon, "\(Self.supplier):\(hub):6001"))
        // DD around DF: CHF -> ACB, code 010F with the user as supplementary party; DLMS array of the joined devices.
        let df = 7 + (log[7] < 0x80 ? 1 : Int(log[7] & 0x7F) + 1) + 5
        #expect(log[0] == 0xDD && log[df] == 0xDF && Array(log[(df + 30)...(df + 32)]) == [0x12, 0x01, 0x0F])
        let lengthAt = df + 49
        let start = lengthAt + (log[lengthAt] < 0x80 ? 1 : Int(log[lengthAt] & 0x7F) + 1)
        let content = Array(log[start..<(log.count - 13)])
        #expect(content[0] == 0xDA && content[7] == 0x01 && content[8] == 0x01 && Int(content[9]) == joined.count, "\(content[9]) \(joined)")
        for id in joined { #expect(Data(content).range(of: Data(euiBytes(id))) != nil, "\(id) missing from the CHF log") }
        let partners = try payload(try asyncResponse(daemon, "\(Self.supplier):\(Self.ppmid):6002"))
        let pdf = 7 + (partners[7] < 0x80 ? 1 : Int(partners[7] & 0x7F) + 1) + 5
        #expect(partners[0] == 0xDD && Array(partners[(pdf + 30)...(pdf + 32)]) == [0x02, 0x00, 0x13])
        #expect(Data(partners).range(of: Data(euiBytes(Self.esme) + [0x02, 0x01, 0x01])) != nil, "the ESME, type 1, in the PPMID's join details")
    }
}

/// An EUI-64's 8 bytes.
func euiBytes(_ eui: String) -> [UInt8] {
    guard let id = EUI64(eui) else { return [] }
    return (0..<8).map { UInt8(truncatingIfNeeded: id.rawValue >> (56 - 8 * UInt64($0))) }
}
