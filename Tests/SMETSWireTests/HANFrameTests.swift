import SMETSCore
import Testing
@testable import SMETSWire

private let device = EUI64(0x00DB_1234_5678_90A1)
private let rig = EUI64(0x00DB_0000_0000_0001)

/// One frame of each type, for round trips.
let sampleHANFrames: [HANFrame] = [
    .hello(HANHello(rigNode: rig, target: device)),
    .hello(HANHello(version: 7, rigNode: rig, target: .zero)),
    .welcome(HANWelcome(
        device: device, deviceType: .ppmid, smetsMode: .smets2, manufacturerCode: 0x1234, imageType: 0x5678,
        firmware: FirmwareVersion(0x0102_030A))),
    .data(HANData(source: rig, destination: device, clusterID: ZCLClusterID.basic, zcl: hex("00 12 00 04 00 05 00 00 40"))),
    .data(HANData(source: device, destination: rig, clusterID: 0x0019, sourceEndpoint: 9, destinationEndpoint: 2, zcl: [0x19, 0, 0x0B])),
    .error(HANError(code: .notAttached, reason: "no HELLO yet")),
    .error(HANError(code: .unknownDevice, reason: "")),
]

@Suite("HAN link frames")
struct HANFrameTests {
    @Test("HELLO has the contract's byte layout")
    func helloBytes() {
        let frame = HANFrame.hello(HANHello(rigNode: rig, target: device))
        #expect(frame.encoded() == hex("12 00 01 01  01 00 00 00 00 00 DB 00  A1 90 78 56 34 12 DB 00"))
    }

    @Test("WELCOME has the contract's byte layout")
    func welcomeBytes() throws {
        let frame = HANFrame.welcome(HANWelcome(
            device: device, deviceType: 5, smetsMode: 2, manufacturerCode: 0x1234, imageType: 0x5678,
            currentFileVersion: 0x0102_030A))
        let bytes = hex("14 00 02 01  A1 90 78 56 34 12 DB 00  05 02 34 12 78 56 0A 03 02 01")
        #expect(frame.encoded() == bytes)
        guard case let .welcome(welcome) = try HANFrame(decoding: bytes) else {
            Issue.record("not a WELCOME")
            return
        }
        #expect(welcome.knownDeviceType == .ppmid)
        #expect(welcome.knownSMETSMode == .smets2)
        #expect(welcome.firmware.hex == "0102030A")
    }

    @Test("DATA has the contract's byte layout")
    func dataBytes() {
        let frame = HANFrame.data(HANData(source: rig, destination: device, clusterID: 0x0702, zcl: [0x00, 0x01, 0x00]))
        #expect(frame.encoded() == hex("""
            1A 00 10  01 00 00 00 00 00 DB 00  A1 90 78 56 34 12 DB 00  09 01  02 07  01 01  00 01 00
            """))
    }

    @Test("ERROR has the contract's byte layout")
    func errorBytes() {
        #expect(HANFrame.error(HANError(code: .malformedFrame, reason: "bad")).encoded() == hex("05 00 7F 03 62 61 64"))
    }

    @Test("every sample frame survives a round trip", arguments: sampleHANFrames)
    func roundTrip(frame: HANFrame) throws {
        let bytes = frame.encoded()
        #expect(bytes.count == 2 + frame.frameLength)
        #expect(try HANFrame(decoding: bytes) == frame)
        #expect(try HANFrame.decodeBody(type: bytes[2], body: bytes[3...]) == frame)
    }

    @Test("only error 5 keeps the connection open")
    func closesConnection() {
        #expect(HANErrorCode.allCases.filter { !$0.closesConnection } == [.notAttached])
        #expect(HANErrorCode.allCases.map(\.rawValue) == [1, 2, 3, 4, 5, 6, 7])
    }

    @Test("an over-long ERROR reason is cut to fit the frame limit")
    func longReason() throws {
        let bytes = HANFrame.error(HANError(code: .malformedFrame, reason: String(repeating: "é", count: 3000))).encoded()
        #expect(bytes.count <= 2 + HANLink.maxFrameLength)
        guard case let .error(error) = try HANFrame(decoding: bytes) else {
            Issue.record("not an ERROR")
            return
        }
        #expect(error.reason == String(repeating: "é", count: 2047))
    }

    @Test("invalid UTF-8 in a reason is repaired, not refused")
    func invalidUTF8Reason() throws {
        let frame = try HANFrame(decoding: hex("04 00 7F 01 FF 41"))
        #expect(frame == .error(HANError(code: .unsupportedVersion, reason: "?A")))
    }

    @Test("an oversized DATA frame is written with a length the peer refuses")
    func oversizedData() throws {
        let zcl = [UInt8](repeating: 0, count: HANData.maxZCLLength + 1)
        let bytes = HANFrame.data(HANData(source: rig, destination: device, clusterID: 0, zcl: zcl)).encoded()
        var decoder = HANFrameDecoder()
        decoder.append(bytes)
        #expect(throws: HANFrameError.frameTooLarge(length: 4097, maximum: 4096)) { try decoder.next() }
        // The largest legal DATA frame passes.
        let largest = HANFrame.data(HANData(source: rig, destination: device, clusterID: 0, zcl: Array(zcl.dropLast())))
        #expect(try HANFrame(decoding: largest.encoded()) == largest)
    }
}

@Suite("HAN frame errors")
struct HANFrameErrorTests {
    /// Feeds `bytes` to a fresh streaming decoder and returns what it throws.
    private func streamError(_ bytes: [UInt8]) -> HANFrameError? {
        var decoder = HANFrameDecoder()
        decoder.append(bytes)
        do throws(HANFrameError) {
            _ = try decoder.next()
            return nil
        } catch {
            return error
        }
    }

    @Test("length 0 is malformed (3)")
    func emptyFrame() {
        let error = streamError(hex("00 00 01"))
        #expect(error == .emptyFrame)
        #expect(error?.code == .malformedFrame)
    }

    @Test("length over the maximum is too large (4), decided from the prefix alone")
    func tooLarge() {
        let error = streamError(hex("01 10"))
        #expect(error == .frameTooLarge(length: 4097, maximum: 4096))
        #expect(error?.code == .frameTooLarge)
        #expect(streamError(hex("FF FF")) == .frameTooLarge(length: 65535, maximum: 4096))
    }

    @Test("a custom maximum is honoured")
    func customMaximum() throws {
        var decoder = HANFrameDecoder(maxFrameLength: 18)
        decoder.append(HANFrame.hello(HANHello(rigNode: rig, target: device)).encoded())
        #expect(try decoder.next() != nil)
        decoder.append(HANFrame.welcome(HANWelcome(
            device: device, deviceType: 1, smetsMode: 2, manufacturerCode: 0, imageType: 0, currentFileVersion: 0)).encoded())
        #expect(throws: HANFrameError.frameTooLarge(length: 20, maximum: 18)) { try decoder.next() }
    }

    @Test("unknown frame type is malformed (3)")
    func unknownType() {
        let error = streamError(hex("02 00 42 00"))
        #expect(error == .unknownFrameType(0x42))
        #expect(error?.code == .malformedFrame)
        #expect(error?.description == "unknown frame type 0x42 at offset 2")
    }

    @Test("HELLO and WELCOME bodies of the wrong size are malformed (3)")
    func wrongSizes() {
        let hello = HANFrame.hello(HANHello(rigNode: rig, target: device)).encoded()
        var long = hello + [0]
        long[0] += 1
        #expect(streamError(long) == .wrongBodyLength(type: .hello, expected: 17, actual: 18))
        var short = Array(hello.dropLast())
        short[0] -= 1
        #expect(streamError(short) == .wrongBodyLength(type: .hello, expected: 17, actual: 16))
        #expect(streamError(hex("01 00 02")) == .wrongBodyLength(type: .welcome, expected: 19, actual: 0))
        #expect(streamError(hex("01 00 02"))?.code == .malformedFrame)
    }

    @Test("DATA shorter than header plus 3 ZCL bytes is malformed (3)")
    func shortData() {
        var frame = HANFrame.data(HANData(source: rig, destination: device, clusterID: 0, zcl: [0, 1, 0])).encoded()
        frame.removeLast()
        frame[0] -= 1
        let error = streamError(frame)
        #expect(error == .bodyTooShort(type: .data, actual: 24, minimum: 25))
        #expect(error?.code == .malformedFrame)
    }

    @Test("ERROR without a code, or with an unknown code, is malformed (3)")
    func badErrorFrames() {
        #expect(streamError(hex("01 00 7F")) == .bodyTooShort(type: .error, actual: 0, minimum: 1))
        #expect(streamError(hex("02 00 7F 08")) == .unknownErrorCode(8))
        #expect(streamError(hex("02 00 7F 00"))?.code == .malformedFrame)
    }

    @Test("whole-frame decoding refuses missing and trailing bytes")
    func wholeFrame() {
        let frame = HANFrame.error(HANError(code: .notAuthorised, reason: "no")).encoded()
        #expect(throws: HANFrameError.incomplete(needed: 2, available: 1)) { try HANFrame(decoding: [0x04]) }
        #expect(throws: HANFrameError.incomplete(needed: 6, available: 5)) { try HANFrame(decoding: Array(frame.dropLast())) }
        #expect(throws: HANFrameError.trailingBytes(1)) { try HANFrame(decoding: frame + [0]) }
        #expect(throws: HANFrameError.emptyFrame) { try HANFrame(decoding: [0, 0]) }
    }

    @Test("a length fault poisons the decoder; a body fault consumes only its frame")
    func afterErrors() throws {
        var poisoned = HANFrameDecoder()
        poisoned.append(hex("00 00"))
        #expect(throws: HANFrameError.emptyFrame) { try poisoned.next() }
        poisoned.append(sampleHANFrames[0].encoded())
        #expect(throws: HANFrameError.emptyFrame) { try poisoned.next() }

        var recovering = HANFrameDecoder()
        recovering.append(hex("02 00 42 00") + sampleHANFrames[0].encoded())
        #expect(throws: HANFrameError.unknownFrameType(0x42)) { try recovering.next() }
        #expect(try recovering.next() == sampleHANFrames[0])
        #expect(try recovering.next() == nil)
    }

    @Test("every error code has a description naming the offset")
    func descriptions() {
        let errors: [HANFrameError] = [
            .emptyFrame, .frameTooLarge(length: 5000, maximum: 4096), .unknownFrameType(3),
            .wrongBodyLength(type: .hello, expected: 17, actual: 3), .bodyTooShort(type: .data, actual: 3, minimum: 25),
            .unknownErrorCode(9),
        ]
        for error in errors {
            #expect(error.description.contains("offset"), "\(error)")
        }
    }
}

@Suite("HAN streaming decoder")
struct HANFrameDecoderTests {
    private var stream: [UInt8] { sampleHANFrames.flatMap { $0.encoded() } }

    @Test("frames fed one byte at a time come out whole and in order")
    func oneByteAtATime() throws {
        var decoder = HANFrameDecoder()
        var frames: [HANFrame] = []
        for byte in stream {
            decoder.append(CollectionOfOne(byte))
            while let frame = try decoder.next() { frames.append(frame) }
        }
        #expect(frames == sampleHANFrames)
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test("nil until a frame is complete")
    func partial() throws {
        var decoder = HANFrameDecoder()
        let bytes = sampleHANFrames[3].encoded()
        decoder.append(bytes.prefix(1))
        #expect(try decoder.next() == nil)
        decoder.append(bytes[1..<(bytes.count - 1)])
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedByteCount == bytes.count - 1)
        decoder.append(bytes.suffix(1))
        #expect(try decoder.next() == sampleHANFrames[3])
        #expect(try decoder.next() == nil)
    }

    @Test("random chunking of a long stream yields the same frames", arguments: [1, 2, 3, 4, 5])
    func randomChunks(seed: UInt64) throws {
        var generator = SplitMix64(seed: seed)
        let repeated = Array(repeating: sampleHANFrames, count: 200).flatMap { $0 }
        let bytes = repeated.flatMap { $0.encoded() }
        var decoder = HANFrameDecoder()
        var frames: [HANFrame] = []
        var index = 0
        while index < bytes.count {
            let size = Int(generator.next() % 300) + 1
            let end = min(index + size, bytes.count)
            decoder.append(bytes[index..<end])
            index = end
            while let frame = try decoder.next() { frames.append(frame) }
        }
        #expect(frames == repeated)
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test("decoding is linear: 20,000 frames in one buffer decode quickly")
    func linearTime() throws {
        let frame = HANFrame.data(HANData(source: rig, destination: device, clusterID: 0, zcl: [UInt8](repeating: 7, count: 40)))
        let one = frame.encoded()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(one.count * 20_000)
        for _ in 0..<20_000 { bytes.append(contentsOf: one) }
        let clock = ContinuousClock()
        var count = 0
        let elapsed = try clock.measure {
            var decoder = HANFrameDecoder()
            decoder.append(bytes)
            while let decoded = try decoder.next() {
                if decoded == frame { count += 1 }
            }
        }
        #expect(count == 20_000)
        // Shifting the buffer per frame would move ~20,000 x 1.3 MB; linear decoding takes well under this.
        #expect(elapsed < .seconds(10))
    }
}

extension HANFrame: CustomTestStringConvertible {
    public var testDescription: String { "\(type) frame of \(frameLength) bytes" }
}
