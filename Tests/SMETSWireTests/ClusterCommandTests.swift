import SMETSCore
import Testing
@testable import SMETSWire

// Vectors marked "zigpy 2.4.0" were produced by zigpy 2.4.0. zigpy 2.4.0 defines no commands for
// Messaging, Prepayment or Device Management, so those vectors were built from zigpy's field
// serializers (t.uint32_t, t.UTCTime, t.bitmap32, t.CharacterString, t.LVBytes) and
// foundation.ZCLHeader.cluster(...), in the field order of gb-smart-metering.md.
// The OTA vectors come from zigpy's own command schemas (zigpy.zcl.clusters.general.Ota).

private let hub = EUI64(0x00DB_1234_5678_90A1)

@Suite("Cluster command vectors")
struct ClusterCommandVectorTests {
    @Test("DisplayMessage (zigpy 2.4.0 field serializers)")
    func displayMessage() throws {
        let bytes = hex("19 21 00  02 01 00 00  00  00 00 00 00  3C 00  05 48 65 6C 6C 6F  00")
        let frame = try ZCLFrame(decoding: bytes)
        #expect(frame.header.frameType == .clusterSpecific)
        #expect(frame.header.direction == .serverToClient)
        #expect(frame.header.commandID == DisplayMessage.commandID)
        let message = try frame.decodePayload(as: DisplayMessage.self)
        let expected = DisplayMessage(
            messageID: 0x102, messageControl: 0, startTime: 0, durationMinutes: 60, message: "Hello", extendedControl: 0)
        #expect(message == expected)
        #expect(ZCLFrame(expected, sequenceNumber: 0x21, disableDefaultResponse: true).encoded() == bytes)
    }

    @Test("PublishChangeOfTenancy (zigpy 2.4.0 field serializers)")
    func publishChangeOfTenancy() throws {
        let bytes = hex("19 22 00  01 00 00 00  42 00 00 00  00  00 08 AF 2F  03 63 00 00")
        let frame = try ZCLFrame(decoding: bytes)
        let tenancy = try frame.decodePayload(as: PublishChangeOfTenancy.self)
        #expect(frame.payload.count == 17)
        let expected = PublishChangeOfTenancy(
            providerID: 1, issuerEventID: 0x42, tariffType: 0, implementationTime: 800_000_000, tenancyChangeControl: 0x6303)
        #expect(tenancy == expected)
        let control = tenancy.tenancyChangeControl
        #expect(control & PublishChangeOfTenancy.ControlBit.clearIHDDataConsumer != 0)
        #expect(control & PublishChangeOfTenancy.ControlBit.clearIHDDataSupplier == 0)
        #expect(control & PublishChangeOfTenancy.ControlBit.clearTransactionLog != 0)
        #expect(control & PublishChangeOfTenancy.ControlBit.clearPrepaymentLog != 0)
        #expect(ZCLFrame(expected, sequenceNumber: 0x22, disableDefaultResponse: true).encoded() == bytes)
    }

    @Test("ConsumerTopUp (zigpy 2.4.0 field serializers)")
    func consumerTopUp() throws {
        let bytes = hex("01 23 04  02  14 31 32 33 34 35 36 37 38 39 30 31 32 33 34 35 36 37 38 39 30")
        let frame = try ZCLFrame(decoding: bytes)
        #expect(frame.header.direction == .clientToServer)
        let topUp = try frame.decodePayload(as: ConsumerTopUp.self)
        let expected = ConsumerTopUp(originatingDevice: 2, topUpCode: Array("12345678901234567890".utf8))
        #expect(topUp == expected)
        #expect(ZCLFrame(expected, sequenceNumber: 0x23).encoded() == bytes)
    }

    @Test("QueryNextImageRequest with and without hardware version (zigpy 2.4.0)")
    func queryNextImageRequest() throws {
        let bytes = hex("01 24 01  01 34 12 78 56 0A 03 02 01 02 00")
        let frame = try ZCLFrame(decoding: bytes)
        let request = try frame.decodePayload(as: QueryNextImageRequest.self)
        let expected = QueryNextImageRequest(manufacturerCode: 0x1234, imageType: 0x5678, currentFileVersion: 0x0102_030A, hardwareVersion: 2)
        #expect(request == expected)
        #expect(ZCLFrame(expected, sequenceNumber: 0x24).encoded() == bytes)

        let withoutHardware = hex("00 34 12 78 56 0A 03 02 01")
        #expect(try QueryNextImageRequest(decoding: withoutHardware).hardwareVersion == nil)
        #expect(QueryNextImageRequest(manufacturerCode: 0x1234, imageType: 0x5678, currentFileVersion: 0x0102_030A).encoded() == withoutHardware)
    }

    @Test("QueryNextImageResponse, with and without an image (zigpy 2.4.0)")
    func queryNextImageResponse() throws {
        let success = hex("00 34 12 78 56 0B 03 02 01 45 23 01 00")
        let expected = QueryNextImageResponse.success(manufacturerCode: 0x1234, imageType: 0x5678, fileVersion: 0x0102_030B, imageSize: 0x12345)
        #expect(try QueryNextImageResponse(decoding: success) == expected)
        #expect(expected.encoded() == success)
        #expect(try QueryNextImageResponse(decoding: hex("98")) == .failure(.noImageAvailable))
        #expect(QueryNextImageResponse.failure(.noImageAvailable).encoded() == hex("98"))
        #expect(QueryNextImageResponse.failure(statusCode: 0).encoded() == hex("01"))
    }

    @Test("ImageBlockResponse: SUCCESS, WAIT_FOR_DATA and ABORT (zigpy 2.4.0)")
    func imageBlockResponse() throws {
        let bytes = hex("19 25 05  00 34 12 78 56 0B 03 02 01 40 00 00 00 08 01 02 03 04 05 06 07 08")
        let frame = try ZCLFrame(decoding: bytes)
        let response = try frame.decodePayload(as: ImageBlockResponse.self)
        let expected = ImageBlockResponse.success(
            manufacturerCode: 0x1234, imageType: 0x5678, fileVersion: 0x0102_030B, fileOffset: 0x40, data: [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(response == expected)
        #expect(ZCLFrame(expected, sequenceNumber: 0x25, disableDefaultResponse: true).encoded() == bytes)

        let wait = hex("97 00 08 AF 2F 3C 08 AF 2F FA 00")
        let expectedWait = ImageBlockResponse.waitForData(currentTime: 800_000_000, requestTime: 800_000_060, minimumBlockPeriod: 250)
        #expect(try ImageBlockResponse(decoding: wait) == expectedWait)
        #expect(expectedWait.encoded() == wait)
        #expect(expectedWait.status == .waitForData)

        #expect(try ImageBlockResponse(decoding: hex("95")) == .failure(.abort))
        #expect(ImageBlockResponse.failure(.abort).encoded() == hex("95"))
    }

    @Test("ImageBlockRequest with both optional fields (zigpy 2.4.0)")
    func imageBlockRequest() throws {
        let bytes = hex("03 34 12 78 56 0B 03 02 01 40 00 00 00 30 A1 90 78 56 34 12 DB 00 64 00")
        let expected = ImageBlockRequest(
            manufacturerCode: 0x1234, imageType: 0x5678, fileVersion: 0x0102_030B, fileOffset: 0x40, maximumDataSize: 48,
            requestNodeAddress: hub, minimumBlockPeriod: 100)
        #expect(try ImageBlockRequest(decoding: bytes) == expected)
        #expect(expected.encoded() == bytes)
    }

    @Test("ImageNotify, payload types 3 and 0 (zigpy 2.4.0)")
    func imageNotify() throws {
        let full = hex("03 64 34 12 78 56 0B 03 02 01")
        let expected = ImageNotify(queryJitter: 100, manufacturerCode: 0x1234, imageType: 0x5678, newFileVersion: 0x0102_030B)
        #expect(try ImageNotify(decoding: full) == expected)
        #expect(expected.encoded() == full)
        #expect(try ImageNotify(decoding: hex("00 32")) == ImageNotify(queryJitter: 50))
        #expect(ImageNotify(queryJitter: 50).encoded() == hex("00 32"))
    }

    @Test("UpgradeEndRequest and UpgradeEndResponse (zigpy 2.4.0)")
    func upgradeEnd() throws {
        let request = hex("00 34 12 78 56 0B 03 02 01")
        let expectedRequest = UpgradeEndRequest(status: .success, manufacturerCode: 0x1234, imageType: 0x5678, fileVersion: 0x0102_030B)
        #expect(try UpgradeEndRequest(decoding: request) == expectedRequest)
        #expect(expectedRequest.encoded() == request)

        let response = hex("34 12 78 56 0B 03 02 01 00 08 AF 2F 00 00 00 00")
        let expectedResponse = UpgradeEndResponse(
            manufacturerCode: 0x1234, imageType: 0x5678, fileVersion: 0x0102_030B, currentTime: 800_000_000, upgradeTime: 0)
        #expect(try UpgradeEndResponse(decoding: response) == expectedResponse)
        #expect(expectedResponse.encoded() == response)
    }
}

/// A payload sample with its decoder, erased so that one test can run every command.
struct PayloadSample: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    /// Decodes and reports whether the result equals the sample.
    let decodesEqual: @Sendable (ArraySlice<UInt8>) throws(WireError) -> Bool
    /// Whether every strict prefix must be refused (no optional fields or repeated records at the end).
    let prefixesFail: Bool
    /// Whether an extra byte after the layout is ignored (no optional field or record could absorb it).
    let trailingIgnored: Bool

    init<T: ZCLPayload>(_ value: T, prefixesFail: Bool = true, trailingIgnored: Bool? = nil) {
        name = "\(T.self)"
        bytes = value.encoded()
        decodesEqual = { (slice: ArraySlice<UInt8>) throws(WireError) -> Bool in try T(decoding: slice) == value }
        self.prefixesFail = prefixesFail
        self.trailingIgnored = trailingIgnored ?? prefixesFail
    }

    var testDescription: String { "\(name) \(bytes.count) bytes" }
}

let payloadSamples: [PayloadSample] = [
    PayloadSample(ReadAttributes(attributeIDs: [0, 4, 5, 0x4000]), prefixesFail: false),
    PayloadSample(ReadAttributesResponse(records: [
        .value(0, .uint8(3)), .status(5, .unsupportedAttribute), .value(0x4000, .charString("0102030A")),
        .value(0x0000, .uint48(123_456_789)), .value(0x0400, .int24(-5)), .value(1, .ieeeAddress(hub)),
    ]), prefixesFail: false),
    PayloadSample(DefaultResponse(commandID: 0x0A, status: .unsupClusterCommand)),
    PayloadSample(DisplayMessage(messageID: 7, messageControl: 0x80, startTime: 0, durationMinutes: 0xFFFF, message: "Top up soon"), trailingIgnored: false),
    PayloadSample(DisplayMessage(messageID: 7, message: "Grüße", extendedControl: 1), prefixesFail: false),
    PayloadSample(DisplayMessage(messageID: 8, message: nil), trailingIgnored: false),
    PayloadSample(CancelMessage(messageID: 7, messageControl: 0)),
    PayloadSample(CancelAllMessages(implementationTime: 800_000_000)),
    PayloadSample(GetLastMessage(), prefixesFail: false, trailingIgnored: true),
    PayloadSample(MessageConfirmation(messageID: 7, confirmationTime: 800_000_001), trailingIgnored: false),
    PayloadSample(MessageConfirmation(messageID: 7, confirmationTime: 1, confirmationControl: 2, response: [0x59]), prefixesFail: false),
    PayloadSample(PublishChangeOfTenancy(providerID: 1, issuerEventID: 2, tariffType: 0, implementationTime: 3, tenancyChangeControl: 0x7FFF)),
    PayloadSample(PublishChangeOfSupplier(
        currentProviderID: 1, issuerEventID: 2, tariffType: 0, proposedProviderID: 3, changeTime: 4, changeControl: 5,
        proposedProviderName: Array("New Energy".utf8), proposedProviderContactDetails: Array("0800 000 000".utf8))),
    PayloadSample(ConsumerTopUp(originatingDevice: 2, topUpCode: Array("73464372634783672983".utf8))),
    PayloadSample(ConsumerTopUpResponse(result: 0, topUpValue: 1000, sourceOfTopUp: 2, creditRemaining: -250)),
    PayloadSample(GetTopUpLog(latestEndTime: 0xFFFF_FFFF, numberOfRecords: 5)),
    PayloadSample(PublishTopUpLog(commandIndex: 0, totalNumberOfCommands: 1, topUps: [
        .init(topUpCode: Array("11111111111111111111".utf8), topUpAmount: 500, topUpTime: 10),
        .init(topUpCode: [], topUpAmount: -1, topUpTime: 20),
    ]), prefixesFail: false),
    PayloadSample(GetDebtRepaymentLog(latestEndTime: 100, numberOfDebts: 3, debtType: 0xFF)),
    PayloadSample(PublishDebtLog(commandIndex: 1, totalNumberOfCommands: 2, collections: [
        .init(collectionTime: 1, amountCollected: 2, debtType: 0, outstandingDebt: 3),
        .init(collectionTime: 4, amountCollected: 5, debtType: 1, outstandingDebt: 6),
    ]), prefixesFail: false),
    PayloadSample(ImageNotify(queryJitter: 100, manufacturerCode: 0x1234, imageType: 0x5678, newFileVersion: 1)),
    PayloadSample(ImageNotify(queryJitter: 100, manufacturerCode: 0x1234)),
    PayloadSample(QueryNextImageRequest(manufacturerCode: 1, imageType: 2, currentFileVersion: 3, hardwareVersion: 4)),
    PayloadSample(QueryNextImageResponse.success(manufacturerCode: 1, imageType: 2, fileVersion: 3, imageSize: 4)),
    PayloadSample(QueryNextImageResponse.failure(.notAuthorized)),
    PayloadSample(ImageBlockRequest(manufacturerCode: 1, imageType: 2, fileVersion: 3, fileOffset: 4, maximumDataSize: 64)),
    PayloadSample(ImageBlockRequest(
        manufacturerCode: 1, imageType: 2, fileVersion: 3, fileOffset: 4, maximumDataSize: 64, minimumBlockPeriod: 7)),
    PayloadSample(ImageBlockResponse.success(
        manufacturerCode: 1, imageType: 2, fileVersion: 3, fileOffset: 4, data: [UInt8](repeating: 0xAB, count: 255))),
    PayloadSample(ImageBlockResponse.waitForData(currentTime: 1, requestTime: 2, minimumBlockPeriod: 3)),
    PayloadSample(ImageBlockResponse.failure(.abort)),
    PayloadSample(UpgradeEndRequest(status: .invalidImage, manufacturerCode: 1, imageType: 2, fileVersion: 3)),
    PayloadSample(UpgradeEndResponse(manufacturerCode: 1, imageType: 2, fileVersion: 3, currentTime: 0, upgradeTime: 0xFFFF_FFFF)),
]

@Suite("Cluster command payloads")
struct ClusterCommandTests {
    @Test("every payload round-trips", arguments: payloadSamples)
    func roundTrip(sample: PayloadSample) throws {
        #expect(try sample.decodesEqual(sample.bytes[...]))
    }

    @Test("every payload decodes with trailing bytes it does not know (forward compatibility)", arguments: payloadSamples)
    func trailingBytesIgnored(sample: PayloadSample) throws {
        guard sample.trailingIgnored else { return }
        let padded = sample.bytes + [0xEE]
        #expect(try sample.decodesEqual(padded[...]))
    }

    @Test("every strict prefix of a fixed layout is refused as truncated", arguments: payloadSamples)
    func prefixesRefused(sample: PayloadSample) {
        guard sample.prefixesFail else { return }
        for length in 0..<sample.bytes.count {
            let prefix = sample.bytes[0..<length]
            do throws(WireError) {
                _ = try sample.decodesEqual(prefix)
                Issue.record("\(sample.name): prefix of \(length) bytes was accepted")
            } catch {
                guard case let .truncated(_, offset, needed, available) = error else {
                    Issue.record("\(sample.name): prefix of \(length) bytes threw \(error)")
                    continue
                }
                #expect(offset + available == length)
                #expect(needed > available)
            }
        }
    }

    @Test("command identities match gb-smart-metering.md")
    func identities() {
        func id<T: ZCLClusterCommand>(_: T.Type) -> [Int] { [Int(T.clusterID), Int(T.commandID), T.direction == .serverToClient ? 1 : 0] }
        #expect(id(DisplayMessage.self) == [0x0703, 0x00, 1])
        #expect(id(CancelMessage.self) == [0x0703, 0x01, 1])
        #expect(id(CancelAllMessages.self) == [0x0703, 0x03, 1])
        #expect(id(GetLastMessage.self) == [0x0703, 0x00, 0])
        #expect(id(MessageConfirmation.self) == [0x0703, 0x01, 0])
        #expect(id(PublishChangeOfTenancy.self) == [0x0708, 0x00, 1])
        #expect(id(PublishChangeOfSupplier.self) == [0x0708, 0x01, 1])
        #expect(id(ConsumerTopUp.self) == [0x0705, 0x04, 0])
        #expect(id(ConsumerTopUpResponse.self) == [0x0705, 0x03, 1])
        #expect(id(GetTopUpLog.self) == [0x0705, 0x08, 0])
        #expect(id(PublishTopUpLog.self) == [0x0705, 0x05, 1])
        #expect(id(GetDebtRepaymentLog.self) == [0x0705, 0x0A, 0])
        #expect(id(PublishDebtLog.self) == [0x0705, 0x06, 1])
        #expect(id(ImageNotify.self) == [0x0019, 0x00, 1])
        #expect(id(QueryNextImageRequest.self) == [0x0019, 0x01, 0])
        #expect(id(QueryNextImageResponse.self) == [0x0019, 0x02, 1])
        #expect(id(ImageBlockRequest.self) == [0x0019, 0x03, 0])
        #expect(id(ImageBlockResponse.self) == [0x0019, 0x05, 1])
        #expect(id(UpgradeEndRequest.self) == [0x0019, 0x06, 0])
        #expect(id(UpgradeEndResponse.self) == [0x0019, 0x07, 1])
        #expect(ZCLProfileID.smartEnergy == 0x0109)
        #expect(ZCLClusterID.metering == 0x0702)
    }

    @Test("optional tails: absent fields decode as nil")
    func optionalTails() throws {
        let display = try DisplayMessage(decoding: DisplayMessage(messageID: 1, message: "x").encoded())
        #expect(display.extendedControl == nil)
        let confirmation = try MessageConfirmation(decoding: hex("01 00 00 00 02 00 00 00 03"))
        #expect(confirmation.confirmationControl == 3)
        #expect(confirmation.response == nil)
        // A response without a control byte is not written: the fields are sequential.
        #expect(MessageConfirmation(messageID: 1, confirmationTime: 2, response: [1]).encoded().count == 8)
    }

    @Test("ImageNotify: a payload type over 3 is refused; earlier missing fields drop later ones")
    func imageNotifyEdges() {
        #expect(throws: WireError.invalidValue(field: "payload type", offset: 0, reason: "4 is not 0-3")) {
            try ImageNotify(decoding: hex("04 64"))
        }
        let gappy = ImageNotify(queryJitter: 1, manufacturerCode: nil, imageType: 0x5678, newFileVersion: 3)
        #expect(gappy.payloadType == 0)
        #expect(gappy.encoded() == hex("00 01"))
    }

    @Test("ImageBlockResponse: a truncated block is refused; status values with layouts are not written bare")
    func imageBlockEdges() {
        #expect(throws: WireError.truncated(field: "image data", offset: 14, needed: 8, available: 7)) {
            try ImageBlockResponse(decoding: hex("00 34 12 78 56 0B 03 02 01 40 00 00 00 08 01 02 03 04 05 06 07"))
        }
        #expect(ImageBlockResponse.failure(statusCode: 0x97).encoded() == hex("01"))
        #expect(ImageBlockResponse.failure(statusCode: 0x00).encoded() == hex("01"))
        let long = ImageBlockResponse.success(manufacturerCode: 0, imageType: 0, fileVersion: 0, fileOffset: 0, data: [UInt8](repeating: 1, count: 300))
        #expect(long.encoded().count == 1 + 12 + 1 + 255)
    }

    @Test("a partial trailing log record is refused")
    func partialRecords() {
        var topUps = PublishTopUpLog(topUps: [.init(topUpCode: [1], topUpAmount: 1, topUpTime: 1)]).encoded()
        topUps.removeLast()
        #expect(throws: WireError.truncated(field: "top-up time", offset: 8, needed: 4, available: 3)) {
            try PublishTopUpLog(decoding: topUps)
        }
        var debts = PublishDebtLog(collections: [.init(collectionTime: 1, amountCollected: 1, debtType: 1, outstandingDebt: 1)]).encoded()
        debts.removeLast()
        #expect(throws: WireError.truncated(field: "outstanding debt", offset: 11, needed: 4, available: 3)) {
            try PublishDebtLog(decoding: debts)
        }
    }
}
