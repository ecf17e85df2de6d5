import SMETSWire

extension FuzzTarget {
    /// The HAN link frame stream decoder, fed in arbitrary pieces.
    ///
    /// Input: a control byte (bits 0-4: how many split lengths follow; bit 5: a 64-byte frame limit
    /// instead of 4096; bit 6: also feed the stream one byte at a time), the split lengths, then the
    /// stream. Properties: however the stream is cut, the decoder returns the same frames and errors
    /// as when it gets the stream at once; each frame decodes the same alone; decode(encode(frame))
    /// is the frame; an error's description is not empty.
    public static let hanStream = FuzzTarget(
        name: "han-stream",
        summary: "HANFrameDecoder over arbitrary splits of a HAN link stream; HANFrame round trip"
    ) { bytes in
        var input = FuzzInput(bytes)
        let control = input.byte()
        let splits = (0..<Int(control & 0x1F)).map { _ in Int(input.byte()) }
        let maxFrameLength = control & 0x20 != 0 ? 64 : HANLink.maxFrameLength
        let stream = input.rest

        // The reference: everything at once.
        var whole = HANFrameDecoder(maxFrameLength: maxFrameLength)
        whole.append(stream)
        var reference: [StreamEvent] = []
        var consumed = 0
        var poisoned = false
        while !poisoned {
            let before = whole.bufferedByteCount
            let event = StreamEvent.next(from: &whole)
            guard let event else { break }
            let frameBytes = stream[consumed..<(consumed + before - whole.bufferedByteCount)]
            consumed += before - whole.bufferedByteCount
            reference.append(event)
            switch event {
            case let .frame(frame):
                if let failure = checkFrame(frame, bytes: frameBytes, maxFrameLength: maxFrameLength) { return failure }
            case let .error(error):
                if error.description.isEmpty { return "an error without a description" }
                poisoned = error.poisonsStream
            }
        }

        // The same stream in the pieces the input asks for, the rest in one piece.
        let pieces = cut(stream, at: splits)
        if let failure = compare(pieces: pieces, maxFrameLength: maxFrameLength, reference: reference, label: "split") {
            return failure
        }
        if control & 0x40 != 0 {
            let bytewise = stream.indices.map { stream[$0...$0] }
            if let failure = compare(pieces: bytewise, maxFrameLength: maxFrameLength, reference: reference, label: "byte-at-a-time") {
                return failure
            }
        }
        return nil
    }

    private static func compare(
        pieces: [ArraySlice<UInt8>], maxFrameLength: Int, reference: [StreamEvent], label: String
    ) -> String? {
        var decoder = HANFrameDecoder(maxFrameLength: maxFrameLength)
        var events: [StreamEvent] = []
        feeding: for piece in pieces {
            decoder.append(piece)
            // Drained after every piece, as the server does after every read.
            while let event = StreamEvent.next(from: &decoder) {
                events.append(event)
                if case let .error(error) = event, error.poisonsStream { break feeding }
            }
        }
        guard events == reference else {
            return "\(label): \(pieces.map(\.count)) gave \(events), all at once gave \(reference)"
        }
        return nil
    }

    private static func checkFrame(_ frame: HANFrame, bytes: ArraySlice<UInt8>, maxFrameLength: Int) -> String? {
        let alone: HANFrame
        do throws(HANFrameError) {
            alone = try HANFrame(decoding: bytes, maxFrameLength: maxFrameLength)
        } catch {
            return "frame \(hex(bytes)) decoded in the stream but not alone: \(error)"
        }
        guard alone == frame else { return "frame \(hex(bytes)) decoded differently alone: \(alone) vs \(frame)" }
        let encoded = frame.encoded()
        do throws(HANFrameError) {
            let again = try HANFrame(decoding: encoded)
            guard again == frame else { return "decode(encode(\(frame))) is \(again)" }
        } catch {
            return "encode(\(frame)) = \(hex(encoded)) does not decode: \(error)"
        }
        return nil
    }
}

/// What one `next()` gave: a frame or an error.
enum StreamEvent: Equatable, CustomStringConvertible {
    case frame(HANFrame)
    case error(HANFrameError)

    /// nil when the decoder wants more bytes.
    static func next(from decoder: inout HANFrameDecoder) -> StreamEvent? {
        do throws(HANFrameError) {
            return try decoder.next().map { .frame($0) }
        } catch {
            return .error(error)
        }
    }

    var description: String {
        switch self {
        case let .frame(frame): "\(frame.type)"
        case let .error(error): "error(\(error))"
        }
    }
}

extension HANFrameError {
    /// A fault of the length field: the decoder cannot find the next frame, so it stops for good.
    var poisonsStream: Bool {
        switch self {
        case .emptyFrame, .frameTooLarge: true
        default: false
        }
    }
}
