import SMETSCore
import Testing
@testable import SMETSWire

// Vectors marked "zigpy 2.4.0" were produced by zigpy 2.4.0's serializers
// (`zigpy.zcl.foundation` and `zigpy.types`), not written by hand.

@Suite("ZCL frames")
struct ZCLFrameTests {
    @Test("header flags map to the frame control bits")
    func frameControl() throws {
        let header = ZCLHeader(
            frameType: .clusterSpecific, manufacturerCode: 0x1234, direction: .serverToClient,
            disableDefaultResponse: true, sequenceNumber: 0x55, commandID: 0x07)
        #expect(header.frameControl == 0b0001_1101)
        let bytes = ZCLFrame(header: header, payload: [0xAA]).encoded()
        #expect(bytes == hex("1D 34 12 55 07 AA"))
        let decoded = try ZCLFrame(decoding: bytes)
        #expect(decoded.header == header)
        #expect(decoded.header.manufacturerSpecific)
        #expect(decoded.payload == [0xAA])
    }

    @Test("every combination of header flags round-trips")
    func allFlags() throws {
        for frameType in ZCLFrameType.allCases {
            for direction in ZCLDirection.allCases {
                for disable in [false, true] {
                    for manufacturer in [nil, UInt16(0xBEEF)] {
                        let frame = ZCLFrame(
                            header: ZCLHeader(
                                frameType: frameType, manufacturerCode: manufacturer, direction: direction,
                                disableDefaultResponse: disable, sequenceNumber: 9, commandID: 3),
                            payload: [1, 2])
                        let bytes = frame.encoded()
                        #expect(bytes.count == frame.header.encodedLength + 2)
                        #expect(try ZCLFrame(decoding: bytes) == frame)
                    }
                }
            }
        }
    }

    @Test("reserved frame-control bits are ignored; reserved frame types are refused")
    func reserved() throws {
        let frame = try ZCLFrame(decoding: hex("E0 01 00"))
        #expect(frame.header.frameType == .global)
        #expect(frame.header.frameControl == 0)
        #expect(throws: WireError.invalidValue(field: "frame control", offset: 0, reason: "frame type 2 is reserved")) {
            try ZCLFrame(decoding: hex("02 01 00"))
        }
    }

    @Test("a frame too short for its header throws")
    func short() {
        #expect(throws: WireError.truncated(field: "command ID", offset: 2, needed: 1, available: 0)) {
            try ZCLFrame(decoding: hex("00 01"))
        }
        #expect(throws: WireError.truncated(field: "manufacturer code", offset: 1, needed: 2, available: 1)) {
            try ZCLFrame(decoding: hex("04 01"))
        }
    }

    @Test("a response header echoes the sequence number and reverses the direction")
    func responseHeader() {
        let request = ZCLHeader(frameType: .global, manufacturerCode: 0x10, direction: .clientToServer, sequenceNumber: 0x42, commandID: 0)
        let response = request.response(frameType: .global, commandID: ZCLGlobalCommandID.readAttributesResponse)
        #expect(response.direction == .serverToClient)
        #expect(response.sequenceNumber == 0x42)
        #expect(response.manufacturerCode == 0x10)
        #expect(response.commandID == 0x01)
    }

    @Test("Basic Read Attributes request (zigpy 2.4.0)")
    func readAttributesZigpy() throws {
        let bytes = hex("00 12 00 04 00 05 00 00 40")
        let frame = try ZCLFrame(decoding: bytes)
        #expect(frame.header == ZCLHeader(frameType: .global, direction: .clientToServer, sequenceNumber: 0x12, commandID: 0x00))
        let request = try frame.decodePayload(as: ReadAttributes.self)
        #expect(request.attributeIDs == [BasicAttribute.manufacturerName, BasicAttribute.modelIdentifier, BasicAttribute.swBuildID])
        #expect(ZCLFrame(request, direction: .clientToServer, sequenceNumber: 0x12).encoded() == bytes)
    }

    @Test("Basic Read Attributes Response (zigpy 2.4.0)")
    func readAttributesResponseZigpy() throws {
        let bytes = hex("""
            18 12 01  04 00 00 42 04 41 43 4D 45  05 00 86  00 00 00 20 03  00 40 00 42 08 30 31 30 32 30 33 30 41
            """)
        let frame = try ZCLFrame(decoding: bytes)
        #expect(frame.header.direction == .serverToClient)
        #expect(frame.header.disableDefaultResponse)
        let response = try frame.decodePayload(as: ReadAttributesResponse.self)
        let expected = ReadAttributesResponse(records: [
            .value(BasicAttribute.manufacturerName, .charString("ACME")),
            .status(BasicAttribute.modelIdentifier, .unsupportedAttribute),
            .value(BasicAttribute.zclVersion, .uint8(3)),
            .value(BasicAttribute.swBuildID, .charString("0102030A")),
        ])
        #expect(response == expected)
        #expect(response[BasicAttribute.modelIdentifier]?.status == .unsupportedAttribute)
        #expect(response[BasicAttribute.swBuildID]?.value == .charString("0102030A"))
        #expect(response[0x7777] == nil)
        #expect(ZCLFrame(expected, direction: .serverToClient, sequenceNumber: 0x12, disableDefaultResponse: true).encoded() == bytes)
    }

    @Test("Metering Read Attributes Response with 48-, 24- and signed values (zigpy 2.4.0)")
    func meteringResponseZigpy() throws {
        let payload = hex("00 00 00 25 9A 78 56 34 12 00  01 03 00 22 01 00 00  00 04 00 2A 24 FA FF  01 00 00 2B E0 B1 FF FF")
        let expected = ReadAttributesResponse(records: [
            .value(MeteringAttribute.currentSummationDelivered, .uint48(0x12_3456_789A)),
            .value(MeteringAttribute.multiplier, .uint24(1)),
            .value(MeteringAttribute.instantaneousDemand, .int24(-1500)),
            .value(PrepaymentAttribute.creditRemaining, .int32(-20000)),
        ])
        #expect(try ReadAttributesResponse(decoding: payload) == expected)
        #expect(expected.encoded() == payload)
    }

    @Test("Default Response (zigpy 2.4.0)")
    func defaultResponseZigpy() throws {
        let bytes = hex("18 56 0B 04 80")
        let frame = try ZCLFrame(decoding: bytes)
        let response = try frame.decodePayload(as: DefaultResponse.self)
        #expect(response == DefaultResponse(commandID: 0x04, status: .malformedCommand))
        #expect(response.status == .malformedCommand)
        #expect(ZCLFrame(response, direction: .serverToClient, sequenceNumber: 0x56, disableDefaultResponse: true).encoded() == bytes)
    }

    @Test("Write Attributes and its response: records, a single SUCCESS, status records (zigpy's bytes)")
    func writeAttributesZigpy() throws {
        // zigpy: Attribute(0xFF00, TypeValue(0x42, CharacterString("budget=300"))).serialize()
        let payload = hex("00 FF 42 0A 62 75 64 67 65 74 3D 33 30 30")
        let write = WriteAttributes(records: [.init(attributeID: 0xFF00, value: .charString("budget=300"))])
        #expect(try WriteAttributes(decoding: payload) == write)
        #expect(write.encoded() == payload)
        #expect(throws: WireError.self) { try WriteAttributes(decoding: payload.dropLast()) }
        // zigpy: WriteAttributesResponse([WriteAttributesStatusRecord(SUCCESS)]) is the one byte 00.
        #expect(WriteAttributesResponse(failures: []).encoded() == [0x00])
        #expect(try WriteAttributesResponse(decoding: [0x00]) == WriteAttributesResponse(failures: []))
        // zigpy: WriteAttributesStatusRecord(INVALID_VALUE, 0xFF00) is 87 00 FF.
        let refused = WriteAttributesResponse(failures: [.init(status: .invalidValue, attributeID: 0xFF00), .init(status: .readOnly, attributeID: 0x4000)])
        #expect(refused.encoded() == hex("87 00 FF 88 00 40"))
        #expect(try WriteAttributesResponse(decoding: hex("87 00 FF 88 00 40")) == refused)
        #expect(throws: WireError.self) { try WriteAttributesResponse(decoding: hex("87 00")) }
        #expect(throws: WireError.self) { try WriteAttributesResponse(decoding: []) }
    }

    @Test("unknown status bytes survive a round trip")
    func unknownStatus() throws {
        let response = try DefaultResponse(decoding: hex("01 5A"))
        #expect(response.statusCode == 0x5A)
        #expect(response.status == nil)
        #expect(response.encoded() == hex("01 5A"))
        #expect(ZCLStatus.describe(0x5A) == "0x5A")
        #expect(ZCLStatus.describe(0x81) == "UNSUP_CLUSTER_COMMAND")
    }

    @Test("ZCL status codes have the values the ZCL assigns")
    func statusValues() {
        let expected: [(ZCLStatus, UInt8)] = [
            (.success, 0x00), (.failure, 0x01), (.notAuthorized, 0x7E), (.malformedCommand, 0x80),
            (.unsupClusterCommand, 0x81), (.unsupGeneralCommand, 0x82), (.invalidField, 0x85),
            (.unsupportedAttribute, 0x86), (.invalidValue, 0x87), (.insufficientSpace, 0x89),
            (.duplicateExists, 0x8A), (.notFound, 0x8B), (.abort, 0x95), (.invalidImage, 0x96),
            (.waitForData, 0x97), (.noImageAvailable, 0x98), (.requireMoreImage, 0x99), (.unsupportedCluster, 0xC3),
        ]
        for (status, raw) in expected { #expect(status.rawValue == raw, "\(status)") }
    }

    @Test("a SUCCESS status without a value is written as FAILURE, so the record stays decodable")
    func strayStatus() throws {
        let response = ReadAttributesResponse(records: [ReadAttributesResponse.Record(attributeID: 1, outcome: .status(0))])
        #expect(response.encoded() == hex("01 00 01"))
        #expect(try ReadAttributesResponse(decoding: response.encoded()).records.first?.status == .failure)
    }

    @Test("Read Attributes: an odd trailing byte is half an attribute ID")
    func oddReadAttributes() {
        #expect(throws: WireError.truncated(field: "attribute ID", offset: 2, needed: 2, available: 1)) {
            try ReadAttributes(decoding: hex("00 00 04"))
        }
        #expect((try? ReadAttributes(decoding: [UInt8]()))?.attributeIDs == [])
    }

    @Test("Read Attributes Response: an unknown data type stops decoding with its offset")
    func unknownDataType() {
        #expect(throws: WireError.unsupportedDataType(0x48, offset: 3)) {
            try ReadAttributesResponse(decoding: hex("00 00 00 48 00"))
        }
    }
}

@Suite("ZCL values")
struct ZCLValueTests {
    static let samples: [ZCLValue] = [
        .bool(true), .bool(false), .bitmap8(0xA5), .bitmap16(0xBEEF), .bitmap32(0xDEAD_BEEF),
        .uint8(200), .uint16(0xFFFF), .uint24(0xFF_FFFF), .uint32(0x0102_030A), .uint48(0xFFFF_FFFF_FFFF),
        .int8(-128), .int16(-2), .int24(-8_388_608), .int24(8_388_607), .int32(.min),
        .enum8(6), .enum16(0x0102), .octetString([0, 1, 255]), .octetString([]), .octetString(nil),
        .charString("ACME Meters"), .charString(""), .charString(nil), .charString("Grüße"),
        .utc(800_107_200), .utc(ZigbeeTime.invalid), .ieeeAddress(EUI64(0x00DB_1234_5678_90A1)),
    ]

    @Test("every value round-trips through its type", arguments: samples)
    func roundTrip(value: ZCLValue) throws {
        var writer = WireWriter()
        value.encodeTyped(into: &writer)
        #expect(writer.bytes.first == value.dataType.rawValue)
        if let size = value.dataType.fixedSize { #expect(writer.count == 1 + size) }
        var reader = WireReader(writer.bytes)
        #expect(try ZCLValue(decodingTypedFrom: &reader) == value)
        #expect(reader.isAtEnd)
    }

    @Test("every data type has a sample")
    func coverage() {
        #expect(Set(Self.samples.map(\.dataType)) == Set(ZCLDataType.allCases))
    }

    @Test("type bytes are the ZCL's")
    func typeBytes() {
        let expected: [ZCLDataType: UInt8] = [
            .bool: 0x10, .bitmap8: 0x18, .bitmap16: 0x19, .bitmap32: 0x1B, .uint8: 0x20, .uint16: 0x21,
            .uint24: 0x22, .uint32: 0x23, .uint48: 0x25, .int8: 0x28, .int16: 0x29, .int24: 0x2A, .int32: 0x2B,
            .enum8: 0x30, .enum16: 0x31, .octetString: 0x41, .charString: 0x42, .utc: 0xE2, .ieeeAddress: 0xF0,
        ]
        for type in ZCLDataType.allCases { #expect(type.rawValue == expected[type], "\(type)") }
    }

    @Test("invalid strings are a lone 0xFF")
    func invalidStrings() {
        #expect(ZCLValue.charString(nil).encoded() == [0xFF])
        #expect(ZCLValue.octetString(nil).encoded() == [0xFF])
    }

    @Test("a boolean other than 0 or 1 is refused with its offset")
    func badBool() {
        var reader = WireReader(hex("10 02"))
        #expect(throws: WireError.invalidValue(field: "bool", offset: 1, reason: "0x02 is neither 0 nor 1")) {
            try ZCLValue(decodingTypedFrom: &reader)
        }
    }

    @Test("a truncated value names its type")
    func truncatedValue() {
        var reader = WireReader(hex("25 01 02 03"))
        #expect(throws: WireError.truncated(field: "uint48", offset: 1, needed: 6, available: 3)) {
            try ZCLValue(decodingTypedFrom: &reader)
        }
    }
}

extension ZCLValue: CustomTestStringConvertible {
    public var testDescription: String { "\(dataType) \(encoded())" }
}
