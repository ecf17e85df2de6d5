import NIOCore
import SMETSRPC

/// The control socket's line framing in the channel pipeline; the rules are `LineSplitter`'s.
struct LineFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    typealias LineTooLong = LineSplitter.LineTooLong

    private var splitter: LineSplitter

    init(maxLineBytes: Int) { splitter = LineSplitter(maxLineBytes: maxLineBytes) }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let step = try buffer.withUnsafeReadableBytes { bytes throws(LineTooLong) in try splitter.step(bytes) }
        guard case let .line(length, consumed) = step,
              let line = buffer.getSlice(at: buffer.readerIndex, length: length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: consumed)
        context.fireChannelRead(wrapInboundOut(line))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
