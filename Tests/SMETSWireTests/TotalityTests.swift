import SMETSCore
import Testing
@testable import SMETSWire

/// Every decoder of outside bytes, erased to "decode and tell me what happened".
///
/// A decoder that traps or reads out of bounds crashes the test process, so reaching the
/// assertions at all is half the test; the other half is that every error names an offset
/// inside the input.
private let decoders: [(name: String, decode: @Sendable (ArraySlice<UInt8>) -> WireError?)] = {
    func entry<T: ZCLPayload>(_: T.Type) -> (String, @Sendable (ArraySlice<UInt8>) -> WireError?) {
        ("\(T.self)", { bytes in
            if case let .failure(error) = decodeResult(T.self, bytes) { error } else { nil }
        })
    }
    return [
        ("ZCLFrame", { bytes in
            do throws(WireError) { _ = try ZCLFrame(decoding: bytes); return nil } catch { return error }
        }),
        ("ZCLValue", { bytes in
            var reader = WireReader(bytes)
            do throws(WireError) { _ = try ZCLValue(decodingTypedFrom: &reader); return nil } catch { return error }
        }),
        entry(ReadAttributes.self), entry(ReadAttributesResponse.self), entry(DefaultResponse.self),
        entry(WriteAttributes.self), entry(WriteAttributesResponse.self),
        entry(DisplayMessage.self), entry(CancelMessage.self), entry(CancelAllMessages.self),
        entry(GetLastMessage.self), entry(MessageConfirmation.self),
        entry(PublishChangeOfTenancy.self), entry(PublishChangeOfSupplier.self),
        entry(ConsumerTopUp.self), entry(ConsumerTopUpResponse.self), entry(GetTopUpLog.self),
        entry(PublishTopUpLog.self), entry(GetDebtRepaymentLog.self), entry(PublishDebtLog.self),
        entry(ImageNotify.self), entry(QueryNextImageRequest.self), entry(QueryNextImageResponse.self),
        entry(ImageBlockRequest.self), entry(ImageBlockResponse.self),
        entry(UpgradeEndRequest.self), entry(UpgradeEndResponse.self),
    ]
}()

/// Decodes `bytes` as one whole HAN frame, as a body and as a stream, checks that the three agree,
/// and returns the whole-frame error, if any.
private func decodeHAN(_ bytes: ArraySlice<UInt8>) -> HANFrameError? {
    let whole: Result<HANFrame, HANFrameError>
    do throws(HANFrameError) { whole = .success(try HANFrame(decoding: bytes)) } catch { whole = .failure(error) }

    var decoder = HANFrameDecoder()
    decoder.append(bytes)
    var streamed: [HANFrame] = []
    var streamError: HANFrameError?
    do throws(HANFrameError) {
        while let frame = try decoder.next() { streamed.append(frame) }
    } catch {
        streamError = error
    }

    switch whole {
    case let .success(frame):
        #expect(streamed == [frame] && streamError == nil)
        let body = try? HANFrame.decodeBody(type: bytes[bytes.startIndex + 2], body: bytes.dropFirst(3))
        #expect(body == frame)
        return nil
    case let .failure(error):
        // A fault inside the first frame is the same fault however the bytes are read. (Whole-frame
        // decoding checks the frame's extent before its body, so extent faults are not compared.)
        switch error {
        case .incomplete, .trailingBytes:
            break
        default:
            #expect(streamed.isEmpty && streamError == error)
        }
        return error
    }
}

/// Valid encodings whose every prefix is fed to every decoder.
private var validEncodings: [[UInt8]] {
    payloadSamples.map(\.bytes)
        + sampleHANFrames.map { $0.encoded() }
        + payloadSamples.map { ZCLFrame(header: ZCLHeader(frameType: .clusterSpecific, manufacturerCode: 0x1234, direction: .serverToClient, sequenceNumber: 1, commandID: 2), payload: $0.bytes).encoded() }
        + ZCLValueTests.samples.map { value in
            var writer = WireWriter()
            value.encodeTyped(into: &writer)
            return writer.bytes
        }
}

private func checkEveryDecoder(_ bytes: ArraySlice<UInt8>) {
    for decoder in decoders {
        if let error = decoder.decode(bytes) {
            #expect(error.offset >= 0 && error.offset <= bytes.count, "\(decoder.name): \(error) for \(bytes.count) bytes")
            if case let .truncated(_, offset, needed, available) = error {
                #expect(offset + available == bytes.count, "\(decoder.name): \(error)")
                #expect(needed > available, "\(decoder.name): \(error)")
            }
            #expect(!error.description.isEmpty)
        }
    }
    _ = decodeHAN(bytes)
}

@Suite("Totality: every decoder returns or throws, for any input")
struct TotalityTests {
    @Test("every prefix of every valid encoding")
    func prefixes() {
        for encoding in validEncodings {
            for length in 0...encoding.count {
                checkEveryDecoder(encoding[0..<length])
            }
        }
    }

    @Test("every strict prefix of a HAN frame is incomplete as a whole frame, and nil as a stream")
    func hanPrefixes() throws {
        for frame in sampleHANFrames {
            let bytes = frame.encoded()
            for length in 0..<bytes.count {
                let error = decodeHAN(bytes[0..<length])
                #expect(error == .incomplete(needed: length < 2 ? 2 : bytes.count, available: length))
                var decoder = HANFrameDecoder()
                decoder.append(bytes[0..<length])
                #expect(try decoder.next() == nil)
            }
        }
    }

    @Test("seeded pseudo-random byte strings", arguments: [0x5EED, 0xC0FFEE, 0xFEED_FACE] as [UInt64])
    func random(seed: UInt64) {
        var generator = SplitMix64(seed: seed)
        for _ in 0..<1500 {
            let count = Int(generator.next() % 80)
            let bytes = generator.bytes(count: count)
            checkEveryDecoder(bytes[...])
        }
    }

    @Test("random bytes with a plausible HAN length prefix and frame type")
    func randomHAN() {
        var generator = SplitMix64(seed: 42)
        let types: [UInt8] = [0x01, 0x02, 0x10, 0x7F, 0x00, 0x11]
        var decodedFrames = 0
        for _ in 0..<2000 {
            let bodyCount = Int(generator.next() % 40)
            let length = UInt16(truncatingIfNeeded: bodyCount + 1)
            let type = types[Int(generator.next() % UInt64(types.count))]
            let bytes = [UInt8(truncatingIfNeeded: length), UInt8(truncatingIfNeeded: length >> 8), type]
                + generator.bytes(count: bodyCount)
            if decodeHAN(bytes[...]) == nil { decodedFrames += 1 }
        }
        // Some of these must be valid frames, or the generator is not exercising the decoders.
        #expect(decodedFrames > 50)
    }

    @Test("random mutations of valid ZCL frames")
    func mutations() {
        var generator = SplitMix64(seed: 7)
        let encodings = validEncodings
        for _ in 0..<3000 {
            var bytes = encodings[Int(generator.next() % UInt64(encodings.count))]
            guard !bytes.isEmpty else { continue }
            for _ in 0...Int(generator.next() % 3) {
                let index = Int(generator.next() % UInt64(bytes.count))
                bytes[index] = UInt8(truncatingIfNeeded: generator.next())
            }
            checkEveryDecoder(bytes[...])
        }
    }
}
