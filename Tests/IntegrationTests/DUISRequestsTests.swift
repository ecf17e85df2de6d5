#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import SMETSCore
import SMETSRPC
import Testing

/// 2.2, 8.11, 3.4 and 4.1.1 against the real daemon over duis.sock: the sync and async responses
/// field by field, the devices' state after, and the GBCS payloads read with the test's own
/// reader (GBCSReader.swift, from gbcs.md).
@Suite(.serialized) struct DUISRequestsTests {
    static let supplier = DUISTests.supplier, dcc = DUISTests.dcc, esme = DUISTests.esme
    static let hub = "00-DB-12-34-56-78-00-01", gsme = "00-DB-12-34-56-78-00-03", gpf = "00-DB-12-34-56-78-00-04"
    static let spare = "00-DB-12-34-56-78-00-07", ihd = DUISTests.ihd

    let duis = DUISTests()

    func send(_ socket: String, target: String, counter: UInt64, reference: String, variant: String, body: String,
              path: String = "/api/v1/serviceS", cv: Int = 1) throws -> (status: Int, body: String) {
        try httpOverUnix(socket, target: path, body: DUISTests.request(target: target, counter: Int(counter), cv: cv, reference: reference, variant: variant, body: body))
    }

    /// The sync reply to a device request: I99, the RequestID echoed, no ResponseID, the references.
    func expectAccepted(_ reply: (status: Int, body: String), _ requestID: String, variant: String) {
        #expect(reply.status == 200)
        #expect(duis.element("ResponseCode", in: reply.body) == "I99")
        #expect(duis.element("RequestID", in: reply.body) == requestID)
        #expect(duis.element("ResponseID", in: reply.body) == nil)
        #expect(duis.element("ServiceReferenceVariant", in: reply.body) == variant)
    }

    /// The async device response: I0, both IDs, the references, and its GBCS payload read.
    func deviceResponse(_ daemon: DaemonHarness, target: String, counter: UInt64, reference: String, variant: String) throws -> GBCSMessage {
        let xml = try duis.asyncResponse(daemon, "\(Self.supplier):\(target):\(counter)")
        #expect(duis.element("ResponseCode", in: xml) == "I0")
        #expect(duis.element("RequestID", in: xml) == "\(Self.supplier):\(target):\(counter)")
        #expect(duis.element("ResponseID", in: xml) == "\(target):\(Self.supplier):\(counter)")
        #expect(duis.element("ServiceReference", in: xml) == reference)
        #expect(duis.element("ServiceReferenceVariant", in: xml) == variant)
        return try GBCSMessage.read(try duis.payload(xml))
    }

    func credit(_ daemon: DaemonHarness, _ meter: String) throws -> Int64 {
        try #require(try daemon.call("meter.debt", ["device": .string(meter)])["credit"]?.intValue)
    }

    /// 2.2 to the ESME with the spec's UTRN (500 pence, counter 7) and RequestID counter 7 << 32:
    /// CS01a accepted and the credit up 500; the same UTRN again is a duplicate, a wrong check
    /// digit or counter is invalid, and neither moves the credit. To the GSME: CS01b, at the GPF.
    @Test func topUpDevice() throws {
        let daemon = try DaemonHarness().start()
        defer { _ = daemon.stop() }
        let socket = daemon.runtimeDirectory + "/duis.sock"
        let before = try credit(daemon, Self.esme)
        let topUps = try daemon.call("devices.get", ["id": .string(Self.esme)])["data"]?["topUps"]?.intValue ?? -1

        func topUp(_ target: String, _ counter: UInt64, _ utrn: String) throws -> GBCSMessage {
            let reply = try send(socket, target: target, counter: counter, reference: "2.2", variant: "2.2", body: "<sr:TopUpDevice><sr:UTRN>\(utrn)</sr:UTRN></sr:TopUpDevice>")
            expectAccepted(reply, "\(Self.supplier):\(target):\(counter)", variant: "2.2")
            return try deviceResponse(daemon, target: target, counter: counter, reference: "2.2", variant: "2.2")
        }
        let counter: UInt64 = 30_064_771_072
        let accepted = try topUp(Self.esme, counter, "73951443011611684638")
        // DD around an unsigned DF: response, the RequestID counter, ESME -> supplier, the device's date-time, code 0007.
        #expect(accepted.wrapped && accepted.cra == 2 && accepted.counter == counter && accepted.signature == [])
        #expect(accepted.originator == euiBytes(Self.esme) && accepted.recipient == euiBytes(Self.supplier))
        #expect(accepted.dateTime?.count == 12 && accepted.messageCode == 0x0007 && accepted.supplementary == nil)
        let result = try DLMSAccessResponse.read(accepted.content)
        // LIID 20 ‖ the counter's low 24 bits (gbcs.md §5.6: `DA 20 00 00 00 …`); one action, success.
        #expect(result.liid == [0x20, 0, 0, 0] && result.data == [.null])
        #expect(result.results.map(\.kind) == [3] && result.results.map(\.result) == [0])
        #expect(try credit(daemon, Self.esme) == before + 500)
        #expect(try daemon.call("devices.get", ["id": .string(Self.esme)])["data"]?["topUps"]?.intValue == topUps + 1)

        // The same UTRN again (a new RequestID with the same counter bits): duplicate, 250.
        let duplicate = try DLMSAccessResponse.read(try topUp(Self.esme, counter + 1, "73951443011611684638").content)
        #expect(duplicate.results.map(\.result) == [250])
        // A wrong check digit, and the right UTRN sent with another counter: invalid, 3.
        #expect(try DLMSAccessResponse.read(try topUp(Self.esme, counter + 2, "73951443011611684637").content).results.map(\.result) == [3])
        #expect(try DLMSAccessResponse.read(try topUp(Self.esme, 8 << 32, "73951443011611684638").content).results.map(\.result) == [3])
        #expect(try credit(daemon, Self.esme) == before + 500)

        // The GSME's credit is held by its premises' GPF: CS01b (GBZ), accepted, 500 from the GSME (01).
        let gasBefore = try credit(daemon, Self.gpf)
        let gas = try topUp(Self.gsme, counter + 3, "73951443011611684638")
        #expect(gas.wrapped && gas.messageCode == 0x0097 && gas.dateTime != nil && gas.originator == euiBytes(Self.gsme))
        var zcl = ByteReader(gas.content)
        #expect(try zcl.take(3) == [0x01, 0x09, 0x01])
        #expect(try zcl.byte() == 0x01 && zcl.integer(2) == 0x0705)
        let frame = try zcl.take(Int(try zcl.integer(2)))
        #expect(zcl.atEnd && Array(frame.prefix(4)) == [0x09, 0x00, 0x03, 0x00])
        let le = { (at: Int) in Int64(Int32(bitPattern: UInt32(frame[at]) | UInt32(frame[at + 1]) << 8 | UInt32(frame[at + 2]) << 16 | UInt32(frame[at + 3]) << 24)) }
        #expect(le(4) == 500 && frame[8] == 0x01 && le(9) == gasBefore + 500)
        #expect(try credit(daemon, Self.gpf) == gasBefore + 500)
        #expect(daemon.logText.contains("duis.topUp") && daemon.logText.contains("prepayment.toppedUp"))
    }

    /// The CS14 alert the user is sent after a whitelist change: only a ResponseID, code 8F12, the
    /// CHF's whole log. Returns the EUIs in it and their link-key hashes.
    func chfAlert(_ daemon: DaemonHarness, after seq: Int64) throws -> (entries: [[UInt8]: [UInt8]], seq: Int64) {
        for _ in 0..<200 {
            let listed = try daemon.call("duis.responses", ["after": .int(seq)])["responses"]?.arrayValue ?? []
            for entry in listed {
                guard let xml = entry["xml"]?.stringValue, xml.contains("<sr:DeviceAlertMessage>") else { continue }
                #expect(duis.element("RequestID", in: xml) == nil)
                let responseID = try #require(duis.element("ResponseID", in: xml))
                #expect(responseID.hasPrefix("\(Self.hub):\(Self.supplier):"))
                #expect(duis.element("AlertCode", in: xml) == "8F12")
                let alert = try GBCSMessage.read(try duis.payload(xml))
                // DD, CRA 3, the CHF's alert counter (the ResponseID's), CHF -> ACB, no date-time, code 0018, unsigned.
                #expect(alert.wrapped && alert.cra == 3 && alert.signature == [] && alert.dateTime == nil && alert.messageCode == 0x0018)
                #expect(String(alert.counter) == responseID.split(separator: ":").last.map(String.init))
                #expect(alert.originator == euiBytes(Self.hub) && alert.recipient == euiBytes(Self.dcc))
                let notification = try DLMSDataNotification.read(alert.content)
                #expect(notification.alertCode == 0x8F12 && notification.liid == [0x20] + Array(euiBytes8(alert.counter).suffix(3)))
                let fields = notification.body.items
                #expect(fields.count == 3 && fields[0].octetValue?.count == 12 && fields[1].octetValue == euiBytes(Self.hub))
                var entries: [[UInt8]: [UInt8]] = [:]
                for item in fields.count == 3 ? fields[2].items : [] {
                    let pair = item.items
                    guard pair.count == 2, let eui = pair[0].octetValue, let hash = pair[1].octetValue else { Issue.record("log entry \(item)"); continue }
                    entries[eui] = hash
                }
                return (entries, entry["seq"]?.intValue ?? seq)
            }
            usleep(50_000)
        }
        throw CocoaError(.fileReadUnknown)
    }

    /// 8.11 Remove then Add of the whitelisted spare PPMID on P0001's hub: CCS02 / CCS01 answered by
    /// the CHF through the ACB, the device Pending then Whitelisted, each change followed by the
    /// 8F12 alert with the whole log; the body rules refuse synchronously.
    @Test func updateHANDeviceLog() throws {
        let stub = ReceiveResponseStub(path: DaemonHarness.scratch("duis-8.11") + "/receive.sock")
        defer { stub.stop() }
        let daemon = try DaemonHarness(lab: try DaemonHarness.copyOfLab(settings: #"{"duis": {"receiveResponseURL": "\#(stub.path)"}}"#)).start()
        defer { _ = daemon.stop() }
        let socket = daemon.runtimeDirectory + "/duis.sock"
        let joined = try daemon.call("devices.list", ["premises": "P0001", "limit": 100])["devices"]?.arrayValue?
            .filter { $0["hub"]?.stringValue == Self.hub }.compactMap { $0["id"]?.stringValue } ?? []
        #expect(joined.contains(Self.esme) && !joined.contains(Self.spare))
        #expect(try daemon.call("devices.get", ["id": .string(Self.spare)])["status"]?.stringValue == "Whitelisted")

        let remove = "<sr:UpdateHANDeviceLog><sr:DeviceID>\(Self.spare)</sr:DeviceID><sr:RequestType>Remove</sr:RequestType></sr:UpdateHANDeviceLog>"
        expectAccepted(try send(socket, target: Self.hub, counter: 8001, reference: "8.11", variant: "8.11", body: remove),
                       "\(Self.supplier):\(Self.hub):8001", variant: "8.11")
        let removed = try deviceResponse(daemon, target: Self.hub, counter: 8001, reference: "8.11", variant: "8.11")
        // ACB-originated on the user's behalf: the response goes CHF -> ACB with the user and its counter as supplementary party.
        #expect(removed.wrapped && removed.cra == 2 && removed.messageCode == 0x0002 && removed.dateTime == nil)
        #expect(removed.originator == euiBytes(Self.hub) && removed.recipient == euiBytes(Self.dcc))
        #expect(removed.supplementary?.party == euiBytes(Self.supplier) && removed.supplementary?.counter == 8001)
        let ccs02 = try DLMSAccessResponse.read(removed.content)
        #expect(ccs02.liid == [0x20] + Array(euiBytes8(removed.counter).suffix(3)))
        #expect(ccs02.data == [.null] && ccs02.results.map(\.kind) == [3] && ccs02.results.map(\.result) == [0])
        #expect(try daemon.call("devices.get", ["id": .string(Self.spare)])["status"]?.stringValue == "Pending")
        let first = try chfAlert(daemon, after: 0)
        #expect(first.entries[euiBytes(Self.spare)] == nil, "removed from the log")
        for id in joined { #expect(first.entries[euiBytes(id)]?.count == 16, "\(id): joined, so a link-key hash") }

        let add = """
            <sr:UpdateHANDeviceLog><sr:DeviceID>\(Self.spare)</sr:DeviceID><sr:RequestType>Add</sr:RequestType>
            <sr:AddDeviceToCHFWhitelist><sr:JoinTimePeriod>300</sr:JoinTimePeriod><sr:InstallCode>8A31C2D4E5F60718293A4B5C6D7E8F90</sr:InstallCode></sr:AddDeviceToCHFWhitelist>
            </sr:UpdateHANDeviceLog>
            """
        expectAccepted(try send(socket, target: Self.hub, counter: 8002, reference: "8.11", variant: "8.11", body: add),
                       "\(Self.supplier):\(Self.hub):8002", variant: "8.11")
        let added = try deviceResponse(daemon, target: Self.hub, counter: 8002, reference: "8.11", variant: "8.11")
        #expect(added.messageCode == 0x0001 && added.supplementary?.counter == 8002)
        let ccs01 = try DLMSAccessResponse.read(added.content)
        // RTDS: three nulls, then action 00, set 00, set 00.
        #expect(ccs01.data == [.null, .null, .null] && ccs01.results.map(\.kind) == [3, 2, 2] && ccs01.results.map(\.result) == [0, 0, 0])
        #expect(try daemon.call("devices.get", ["id": .string(Self.spare)])["status"]?.stringValue == "Whitelisted")
        let second = try chfAlert(daemon, after: first.seq)
        #expect(second.entries[euiBytes(Self.spare)] == [], "whitelisted, not joined: no link key (09 00)")
        #expect(second.entries.count == first.entries.count + 1)

        // Delivered to the Receive Response URL in order: response, alert, response, alert.
        for _ in 0..<100 where stub.documents.count < 4 { usleep(50_000) }
        #expect(stub.documents.map { $0.contains("<sr:DeviceAlertMessage>") } == [false, true, false, true])

        // Remove of a joined display: it leaves the hub, goes back to Pending and out of the log.
        expectAccepted(try send(socket, target: Self.hub, counter: 8010, reference: "8.11", variant: "8.11", body: remove.replacingOccurrences(of: Self.spare, with: Self.ihd)),
                       "\(Self.supplier):\(Self.hub):8010", variant: "8.11")
        #expect(try DLMSAccessResponse.read(try deviceResponse(daemon, target: Self.hub, counter: 8010, reference: "8.11", variant: "8.11").content).results.map(\.result) == [0])
        let ihd = try daemon.call("devices.get", ["id": .string(Self.ihd)])
        #expect(ihd["status"]?.stringValue == "Pending" && ihd["hub"]?.isNull == true)
        let third = try chfAlert(daemon, after: second.seq)
        #expect(third.entries[euiBytes(Self.ihd)] == nil && third.entries.count == second.entries.count - 1)

        // A device of another premises: the CHF refuses (RTDS error results), nothing changes, no alert.
        let other = "00-DB-12-34-56-79-00-05"
        expectAccepted(try send(socket, target: Self.hub, counter: 8011, reference: "8.11", variant: "8.11", body: add.replacingOccurrences(of: Self.spare, with: other)),
                       "\(Self.supplier):\(Self.hub):8011", variant: "8.11")
        let refused = try DLMSAccessResponse.read(try deviceResponse(daemon, target: Self.hub, counter: 8011, reference: "8.11", variant: "8.11").content)
        #expect(refused.results.map(\.kind) == [3, 2, 2] && refused.results.map(\.result) == [0, 1, 250])
        #expect(try daemon.call("devices.get", ["id": .string(other)])["status"]?.stringValue == "Commissioned")
        usleep(300_000)
        let alerts = (try daemon.call("duis.responses", ["after": .int(third.seq)])["responses"]?.arrayValue ?? [])
            .filter { $0["xml"]?.stringValue?.contains("<sr:DeviceAlertMessage>") == true }
        #expect(alerts.isEmpty, "no log change, no 8F12")

        // Body rules, synchronously: Add without the whitelist entry, Remove with one (E081101); an unknown device (E19).
        func code(_ counter: UInt64, _ body: String) throws -> String? {
            duis.element("ResponseCode", in: try send(socket, target: Self.hub, counter: counter, reference: "8.11", variant: "8.11", body: body).body)
        }
        #expect(try code(8003, "<sr:UpdateHANDeviceLog><sr:DeviceID>\(Self.spare)</sr:DeviceID><sr:RequestType>Add</sr:RequestType></sr:UpdateHANDeviceLog>") == "E081101")
        #expect(try code(8004, add.replacingOccurrences(of: ">Add<", with: ">Remove<")) == "E081101")
        #expect(try code(8005, remove.replacingOccurrences(of: Self.spare, with: "00-DB-12-34-56-78-99-99")) == "E19")
        // 8.11 targets the CHF only (E11).
        #expect(duis.element("ResponseCode", in: try send(socket, target: Self.esme, counter: 8006, reference: "8.11", variant: "8.11", body: remove).body) == "E11")
        #expect(try daemon.call("duis.responses", ["requestID": .string("\(Self.supplier):\(Self.hub):8003")])["responses"]?.arrayValue?.isEmpty == true)

        // Durable: after a restart the device is still on the whitelist.
        _ = daemon.stop()
        let again = try DaemonHarness(lab: daemon.labDirectory, state: daemon.stateDirectory, runtime: daemon.runtimeDirectory).start()
        defer { _ = again.stop() }
        #expect(try again.call("devices.get", ["id": .string(Self.spare)])["status"]?.stringValue == "Whitelisted")
    }

    /// 3.4 to the ESME: ECS16 from the ESME, the name and number kept by the premises' meter (and
    /// still there after a restart), sent to the displays in PublishChangeOfSupplier.
    @Test func updateSupplierName() throws {
        let daemon = try DaemonHarness().start()
        defer { _ = daemon.stop() }
        let socket = daemon.runtimeDirectory + "/duis.sock"
        let provider = try daemon.call("devices.get", ["id": .string(Self.esme)])["supplier"]?["provider"]?.stringValue
        let body = "<sr:UpdateSupplierName><sr:SupplierName>Lab Energy Ltd</sr:SupplierName><sr:SupplierTelephoneNumber>0800 555 0199</sr:SupplierTelephoneNumber></sr:UpdateSupplierName>"
        expectAccepted(try send(socket, target: Self.esme, counter: 9001, reference: "3.4", variant: "3.4", body: body), "\(Self.supplier):\(Self.esme):9001", variant: "3.4")
        let answer = try deviceResponse(daemon, target: Self.esme, counter: 9001, reference: "3.4", variant: "3.4")
        #expect(answer.wrapped && answer.cra == 2 && answer.counter == 9001 && answer.messageCode == 0x0025 && answer.dateTime == nil)
        #expect(answer.originator == euiBytes(Self.esme) && answer.recipient == euiBytes(Self.supplier))
        let sets = try DLMSAccessResponse.read(answer.content)
        #expect(sets.liid == [0x20, 0x00, 0x23, 0x29] && sets.data == [.null, .null])
        #expect(sets.results.map(\.kind) == [2, 2] && sets.results.map(\.result) == [0, 0])

        let supplier = try daemon.call("devices.get", ["id": .string(Self.ihd)])["supplier"]
        #expect(supplier?["name"]?.stringValue == "Lab Energy Ltd" && supplier?["telephone"]?.stringValue == "0800 555 0199")
        #expect(supplier?["provider"]?.stringValue == provider, "3.4 changes the name, not the supplier")
        // The IHD was sent them over the HAN (PublishChangeOfSupplier, 0708 command 01) by the ESME.
        var frames: [JSONValue] = []
        for _ in 0..<100 {
            frames = (try daemon.call("han.trace", ["device": .string(Self.ihd), "limit": 50])["frames"]?.arrayValue ?? [])
                .filter { $0["command"]?.stringValue == "PublishChangeOfSupplier" }
            if !frames.isEmpty { break }
            usleep(50_000)
        }
        let zcl = try #require(frames.last?["zcl"]?.stringValue)
        #expect(zcl.contains(Array("Lab Energy Ltd".utf8).map { String(format: "%02X", $0) }.joined()))
        #expect(zcl.contains(Array("0800 555 0199".utf8).map { String(format: "%02X", $0) }.joined()))

        // To the GSME: GCS44, a Write Attributes Response of 0708, all written.
        expectAccepted(try send(socket, target: Self.gsme, counter: 9002, reference: "3.4", variant: "3.4", body: body.replacingOccurrences(of: "Lab Energy Ltd", with: "Gas Co")),
                       "\(Self.supplier):\(Self.gsme):9002", variant: "3.4")
        let gas = try deviceResponse(daemon, target: Self.gsme, counter: 9002, reference: "3.4", variant: "3.4")
        #expect(gas.messageCode == 0x0088 && gas.content == [0x01, 0x09, 0x01, 0x01, 0x07, 0x08, 0x00, 0x04, 0x08, 0x00, 0x04, 0x00])

        _ = daemon.stop()
        let again = try DaemonHarness(lab: daemon.labDirectory, state: daemon.stateDirectory, runtime: daemon.runtimeDirectory).start()
        defer { _ = again.stop() }
        #expect(try again.call("devices.get", ["id": .string(Self.esme)])["supplier"]?["name"]?.stringValue == "Gas Co")
    }

    /// 4.1.1 to the ESME: ECS17b with the protection parameters and the registers encrypted under
    /// the all-zero key; decrypted here, the active import is the meter's register at the time.
    @Test func readInstantaneousImportRegisters() throws {
        let daemon = try DaemonHarness().start()
        defer { _ = daemon.stop() }
        let socket = daemon.runtimeDirectory + "/duis.sock"
        let clock = { Timestamp(rfc3339: try daemon.call("clock.get")["now"]?.stringValue ?? "") }
        let start = try #require(try clock())
        expectAccepted(try send(socket, target: Self.esme, counter: 7001, reference: "4.1", variant: "4.1.1", body: "<sr:ReadInstantaneousImportRegisters/>"),
                       "\(Self.supplier):\(Self.esme):7001", variant: "4.1.1")
        let answer = try deviceResponse(daemon, target: Self.esme, counter: 7001, reference: "4.1", variant: "4.1.1")
        let end = try #require(try clock())
        #expect(answer.wrapped && answer.cra == 2 && answer.counter == 7001 && answer.messageCode == 0x0027 && answer.dateTime?.count == 12)
        let response = try DLMSAccessResponse.read(answer.content)
        #expect(response.liid == [0x20, 0x00, 0x1B, 0x59] && response.results.map(\.kind) == [3] && response.results.map(\.result) == [0])
        // structure { array [ structure { enum 2, structure(5) { 04‖counter, ESME, user, "", { enum 2, { 02, "" } } } } ], protected data }
        let top = try #require(response.data.first)
        #expect(response.data.count == 1 && top.items.count == 2)
        let protection = top.items.first?.items.first?.items ?? []
        #expect(protection.first == .enumeration(2))
        let parameters = protection.count == 2 ? protection[1].items : []
        #expect(parameters.count == 5)
        #expect(parameters.first?.octetValue == [0x04] + euiBytes8(7001))
        #expect(parameters.count == 5 && parameters[1].octetValue == euiBytes(Self.esme) && parameters[2].octetValue == euiBytes(Self.supplier) && parameters[3].octetValue == [])
        let data = try #require(top.items.last?.octetValue)
        #expect(Array(data.prefix(5)) == [0x31, 0, 0, 0, 0])
        let sealed = Array(data.dropFirst(5))
        // GCM with GBCS's 12-byte tag: the keystream is the sealing of zeros; the tag is checked by sealing again.
        let nonce = try AES.GCM.Nonce(data: euiBytes(Self.esme) + [0, 0, 0, 0]), key = SymmetricKey(data: [UInt8](repeating: 0, count: 16))
        let ciphertext = Array(sealed.dropLast(12))
        let stream = Array(try AES.GCM.seal([UInt8](repeating: 0, count: ciphertext.count), using: key, nonce: nonce, authenticating: [0x31]).ciphertext)
        let plain = zip(ciphertext, stream).map { $0 ^ $1 }
        #expect(Array(try AES.GCM.seal(plain, using: key, nonce: nonce, authenticating: [0x31]).tag.prefix(12)) == Array(sealed.suffix(12)), "the tag")
        var reader = ByteReader(plain)
        let registers = try DLMSData.read(&reader)
        #expect(reader.atEnd)
        let fields = registers.items.first?.items ?? []
        #expect(fields.count == 4)
        let active = try #require(fields.first?.unsignedValue)
        #expect(fields.count == 4 && fields[1] == .structure([.signed(0), .enumeration(30)]) && fields[2] == .unsigned(0) && fields[3] == .structure([.signed(0), .enumeration(32)]))
        let esme = try #require(EUI64(Self.esme))
        let low = LoadProfile.cumulative(device: esme, type: .esme, at: start), high = LoadProfile.cumulative(device: esme, type: .esme, at: end)
        #expect(low > 0 && Int64(active) >= low && Int64(active) <= high, "\(active) Wh within the register between \(low) and \(high)")

        // To the gas side (GCS13a): parsed and checked, then 501.
        #expect(try send(socket, target: Self.gsme, counter: 7002, reference: "4.1", variant: "4.1.1", body: "<sr:ReadInstantaneousImportRegisters/>").status == 501)

        // CV 2 (duis.md §6.12: RTDS sends 4.1.1 so too), and 2.2 likewise: I0 + LocalCommand with the
        // command as it would go over the WAN, user-originated; nothing asynchronous, no credit moved.
        let before = try credit(daemon, Self.esme)
        for (counter, variant, body, code) in [(UInt64(7003), "4.1.1", "<sr:ReadInstantaneousImportRegisters/>", UInt16(0x0027)),
                                               (UInt64(3) << 32, "2.2", "<sr:TopUpDevice><sr:UTRN>73946144332040217315</sr:UTRN></sr:TopUpDevice>", UInt16(0x0007))] {
            let reply = try send(socket, target: Self.esme, counter: counter, reference: variant == "2.2" ? "2.2" : "4.1", variant: variant, body: body,
                                 path: "/api/v1/serviceD", cv: 2)
            #expect(duis.element("ResponseCode", in: reply.body) == "I0" && duis.element("ResponseID", in: reply.body) == nil)
            let command = try GBCSMessage.read(try #require(Data(base64Encoded: duis.element("GBCSPayload", in: duis.element("LocalCommand", in: reply.body) ?? "") ?? "").map { [UInt8]($0) }))
            #expect(command.wrapped && command.cra == 1 && command.counter == counter && command.messageCode == code && command.signature == [])
            #expect(command.originator == euiBytes(Self.supplier) && command.recipient == euiBytes(Self.esme) && command.dateTime == nil)
            // DLMS access-request: D9, LIID, no date-time, one action on class 001E (ECS17b) or 0073 (CS01a).
            #expect(Array(command.content.prefix(9)) == [0xD9, 0x20] + Array(euiBytes8(counter).suffix(3)) + [0x00, 0x01, 0x03, 0x00])
            #expect(command.content[9] == (code == 0x0027 ? 0x1E : 0x73))
            if code == 0x0007 { #expect(Array(command.content.suffix(22)) == [0x09, 0x14] + Array("73946144332040217315".utf8)) }
        }
        usleep(300_000)
        #expect(try daemon.call("duis.responses", ["requestID": .string("\(Self.supplier):\(Self.esme):\(UInt64(3) << 32)")])["responses"]?.arrayValue?.isEmpty == true)
        #expect(try credit(daemon, Self.esme) == before)
    }
    /// The unsolicited alerts kept after `seq` (no RequestID), polled until `count` are there.
    func alerts(_ daemon: DaemonHarness, after seq: Int64, count: Int) throws -> [String] {
        var found: [String] = []
        for _ in 0..<200 {
            let listed = try daemon.call("duis.responses", ["after": .int(seq)])["responses"]?.arrayValue ?? []
            found = listed.compactMap { $0["xml"]?.stringValue }.filter { $0.contains("AlertMessage>") }
            if found.count >= count { return found }
            usleep(50_000)
        }
        return found
    }

    /// 11.4 to P0001's PPMID: an unsigned image the device discards (CCS08 8F89, rc 1; no activation),
    /// then a signed one it takes and activates by itself: the CHF's CCS08 8F8A as a DeviceAlertMessage,
    /// the PPMID's CS09 8F8B to the ACB and the DCC's PPMIDAlert to the user.
    @Test func updatePPMIDFirmwareAlerts() throws {
        let daemon = try DaemonHarness().start()
        defer { _ = daemon.stop() }
        let socket = daemon.runtimeDirectory + "/duis.sock"
        let ppmid = DUISTests.ppmid
        func update(_ counter: UInt64, _ image: [UInt8]) throws -> String? {
            let body = "<sr:UpdatePPMIDFirmware><sr:FirmwareImage>\(Data(image).base64EncodedString())</sr:FirmwareImage>"
                + "<sr:FirmwareVersion>01030000</sr:FirmwareVersion><sr:DeviceIDList>\(ppmid)</sr:DeviceIDList></sr:UpdatePPMIDFirmware>"
            return duis.element("ResponseCode", in: try send(socket, target: Self.dcc, counter: counter, reference: "11.4", variant: "11.4", body: body,
                                                             path: "/api/v1/serviceD", cv: 8).body)
        }
        func ccs08(_ xml: String) throws -> (GBCSMessage, ASN1FirmwareAlert) {
            #expect(duis.element("RequestID", in: xml) == nil)
            let responseID = try #require(duis.element("ResponseID", in: xml))
            #expect(responseID.hasPrefix("\(Self.hub):\(Self.supplier):"))
            let message = try GBCSMessage.read(try duis.payload(xml))
            // A bare DF signed by the CHF: CRA 3, its alert counter (the ResponseID's), CHF -> ACB, code 0128.
            #expect(!message.wrapped && message.cra == 3 && message.signature?.count == 64 && message.dateTime == nil && message.supplementary == nil)
            #expect(message.messageCode == 0x0128 && String(message.counter) == responseID.split(separator: ":").last.map(String.init))
            #expect(message.originator == euiBytes(Self.hub) && message.recipient == euiBytes(Self.dcc))
            let alert = try ASN1FirmwareAlert.read(message.content)
            #expect(alert.device == euiBytes(ppmid) && alert.version == [0x01, 0x03, 0x00, 0x00] && alert.time.count == 15 && alert.time.hasSuffix("Z"))
            return (message, alert)
        }

        #expect(try update(5101, try FirmwareTests.build(key: nil)) == "I99")
        let discarded = try alerts(daemon, after: 0, count: 1)
        #expect(discarded.count == 1, "\(discarded)")
        let first = try #require(discarded.first)
        #expect(duis.element("AlertCode", in: first) == "8F89")
        let (firstMessage, failure) = try ccs08(first)
        #expect(failure.alertCode == 0x8F89 && failure.result == 1)
        #expect(try daemon.call("devices.get", ["id": .string(ppmid)])["firmwareVersion"]?.stringValue == "01020300")

        let seq = try daemon.call("duis.responses", [:])["responses"]?.arrayValue?.compactMap { $0["seq"]?.intValue }.max() ?? 0
        #expect(try update(5102, try FirmwareTests.build()) == "I99")
        let taken = try alerts(daemon, after: seq, count: 2)
        #expect(taken.count == 2, "\(taken)")
        let transfer = try #require(taken.first { $0.contains("<sr:DeviceAlertMessage>") })
        #expect(duis.element("AlertCode", in: transfer) == "8F8A")
        let (message, success) = try ccs08(transfer)
        #expect(success.alertCode == 0x8F8A && success.result == 0 && message.counter > firstMessage.counter)
        let dccAlert = try #require(taken.first { $0.contains("<sr:DCCAlertMessage>") })
        #expect(duis.element("RequestID", in: dccAlert) == nil)
        #expect(duis.element("ResponseID", in: dccAlert)?.hasPrefix("\(Self.dcc):\(Self.supplier):") == true)
        #expect(duis.element("DCCAlertCode", in: dccAlert) == "N42")
        #expect(duis.element("DeviceID", in: dccAlert) == ppmid && duis.element("DeviceAlertCode", in: dccAlert) == "8F8B")
        #expect(duis.element("FirmwareVersion", in: dccAlert) == "01030000" && duis.element("ActivateImageResultCode", in: dccAlert) == "ActivationSuccess")
        #expect(try daemon.call("devices.get", ["id": .string(ppmid)])["firmwareVersion"]?.stringValue == "01030000")

        // The CS09 the PPMID sent the ACB, from the log: a bare DF signed by the PPMID, CRA 3, code 012B, 8F8B success.
        let line = try #require(daemon.logText.split(separator: "\n").first { $0.contains("event=duis.alert") && $0.contains("8F8B") })
        let hexText = try #require(line.split(separator: " ").first { $0.hasPrefix("gbcs=") }).dropFirst(5)
        var bytes: [UInt8] = []
        var index = hexText.startIndex
        while index < hexText.endIndex, let next = hexText.index(index, offsetBy: 2, limitedBy: hexText.endIndex), let byte = UInt8(hexText[index..<next], radix: 16) {
            bytes.append(byte); index = next
        }
        let cs09 = try GBCSMessage.read(bytes)
        #expect(!cs09.wrapped && cs09.cra == 3 && cs09.messageCode == 0x012B && cs09.signature?.count == 64)
        #expect(cs09.originator == euiBytes(ppmid) && cs09.recipient == euiBytes(Self.dcc))
        let activation = try ASN1FirmwareAlert.read(cs09.content)
        #expect(activation.alertCode == 0x8F8B && activation.device == nil && activation.version == [0x01, 0x03, 0x00, 0x00] && activation.result == 0)
    }
}

/// A counter's 8 bytes, big-endian.
func euiBytes8(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64($0))) } }
