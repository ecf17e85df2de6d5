import SMETSCore

/// Why bytes on a HAN link could not be read as frames; each maps to the ERROR code the contract names.
///
/// Offsets in the descriptions are those of the frame layout: length at 0, type at 2, body from 3.
public enum HANFrameError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A length field of 0 (offset 0): a frame needs at least its type byte.
    case emptyFrame
    /// A length field (offset 0) over the limit.
    case frameTooLarge(length: Int, maximum: Int)
    /// A type byte (offset 2) that is none of HELLO, WELCOME, DATA, ERROR.
    case unknownFrameType(UInt8)
    /// A HELLO or WELCOME body (from offset 3) that is not its fixed size.
    case wrongBodyLength(type: HANFrameType, expected: Int, actual: Int)
    /// A DATA body shorter than its header and a 3-byte ZCL frame, or an ERROR body without a code.
    case bodyTooShort(type: HANFrameType, actual: Int, minimum: Int)
    /// An ERROR frame's code byte (offset 3) that this version does not define.
    case unknownErrorCode(UInt8)
    /// A body field that could not be read.
    case malformedBody(type: HANFrameType, WireError)
    /// Whole-frame decoding only: fewer bytes than the frame's length field promises.
    case incomplete(needed: Int, available: Int)
    /// Whole-frame decoding only: bytes after the end of the frame.
    case trailingBytes(Int)

    /// The ERROR code the daemon answers this fault with.
    public var code: HANErrorCode {
        switch self {
        case .frameTooLarge: .frameTooLarge
        case .emptyFrame, .unknownFrameType, .wrongBodyLength, .bodyTooShort, .unknownErrorCode,
             .malformedBody, .incomplete, .trailingBytes:
            .malformedFrame
        }
    }

    public var description: String {
        switch self {
        case .emptyFrame:
            "frame length 0 at offset 0: a frame holds at least its type byte"
        case let .frameTooLarge(length, maximum):
            "frame length \(length) at offset 0 is over the limit of \(maximum)"
        case let .unknownFrameType(type):
            "unknown frame type \(hexByte(type)) at offset 2"
        case let .wrongBodyLength(type, expected, actual):
            "\(type) body at offset 3 is \(actual) bytes, expected \(expected)"
        case let .bodyTooShort(type, actual, minimum):
            "\(type) body at offset 3 is \(actual) bytes, at least \(minimum) needed"
        case let .unknownErrorCode(code):
            "unknown ERROR code \(code) at offset 3"
        case let .malformedBody(type, error):
            "\(type) body: \(error)"
        case let .incomplete(needed, available):
            "frame incomplete: \(needed) bytes needed, \(available) given"
        case let .trailingBytes(count):
            "\(count) byte\(count == 1 ? "" : "s") after the end of the frame"
        }
    }
}

/// Splits a HAN link byte stream into frames, however the bytes arrive.
///
/// Feed it with ``append(_:)`` and drain it with ``next()`` until that returns nil.
/// It keeps a read index into one buffer and compacts only when the consumed part is large,
/// so decoding costs O(bytes), not O(bytes × frames).
///
/// After a length fault (``HANFrameError/emptyFrame``, ``HANFrameError/frameTooLarge(length:maximum:)``)
/// the stream cannot be resynchronised: every later ``next()`` throws the same error. After a body
/// fault the frame's bounds are known, so that frame is consumed and the next one can be read,
/// though the link contract says the daemon closes the connection either way.
public struct HANFrameDecoder: Sendable {
    public let maxFrameLength: Int
    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var poisoned: HANFrameError?

    /// Consumed bytes kept before ``append(_:)`` compacts the buffer.
    private static let compactionThreshold = 8192

    /// - Parameter maxFrameLength: the largest length field accepted; the contract's limit is 4096.
    public init(maxFrameLength: Int = HANLink.maxFrameLength) {
        self.maxFrameLength = maxFrameLength
    }

    /// Bytes received but not yet returned as frames.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        if readIndex == buffer.count {
            // Everything was consumed: start over without moving anything.
            buffer.removeAll(keepingCapacity: true)
            readIndex = 0
        } else if readIndex >= Self.compactionThreshold && readIndex >= buffer.count / 2 {
            // Move the unread tail down only when it is at most as long as what is dropped,
            // so each byte is moved a bounded number of times.
            buffer.removeSubrange(0..<readIndex)
            readIndex = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next whole frame, or nil until more bytes arrive.
    ///
    /// - Throws: ``HANFrameError``; its ``HANFrameError/code`` is the ERROR code to answer with.
    public mutating func next() throws(HANFrameError) -> HANFrame? {
        if let poisoned { throw poisoned }
        let available = buffer.count - readIndex
        guard available >= HANLink.lengthPrefixSize else { return nil }
        let length = Int(buffer[readIndex]) | Int(buffer[readIndex + 1]) << 8
        do throws(HANFrameError) {
            try Self.check(length: length, maxFrameLength: maxFrameLength)
        } catch {
            poisoned = error
            throw error
        }
        let total = HANLink.lengthPrefixSize + length
        guard available >= total else { return nil }
        let type = buffer[readIndex + 2]
        let body = buffer[(readIndex + 3)..<(readIndex + total)]
        // The buffer is reset in append, not here: the body slice still shares its storage,
        // and resetting now would force a copy.
        readIndex += total
        return try HANFrame.decodeBody(type: type, body: body)
    }

    /// Throws the framing error a length field causes, if any.
    static func check(length: Int, maxFrameLength: Int) throws(HANFrameError) {
        guard length > 0 else { throw .emptyFrame }
        guard length <= maxFrameLength else { throw .frameTooLarge(length: length, maximum: maxFrameLength) }
    }
}
