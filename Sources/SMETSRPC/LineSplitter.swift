/// The control API's framing: `\n`-terminated lines, the terminator and a `\r` before it dropped.
///
/// Pure (no NIO), so that the daemon's channel handler and the `control-lines` fuzz target run the
/// same code. A line longer than `maxLineBytes` is refused as soon as that many bytes are buffered
/// without a newline: a client cannot make the daemon buffer an endless line.
public struct LineSplitter: Sendable {
    public struct LineTooLong: Error, Equatable, CustomStringConvertible {
        public var limit: Int
        public init(limit: Int) { self.limit = limit }
        public var description: String { "a line longer than \(limit) bytes (maxControlLineBytes)" }
    }

    public enum Step: Equatable, Sendable {
        /// No complete line buffered yet.
        case needMoreData
        /// A line of `length` bytes starts the buffer; `consumed` bytes (line and terminator) are done.
        case line(length: Int, consumed: Int)
    }

    public let maxLineBytes: Int
    /// How much of the buffer is known to hold no newline: each byte is scanned once.
    private var scanned = 0

    public init(maxLineBytes: Int) { self.maxLineBytes = maxLineBytes }

    /// The next step over `buffered`, the unconsumed bytes (after a `.line`, the caller drops
    /// `consumed` bytes before calling again).
    public mutating func step(_ buffered: UnsafeRawBufferPointer) throws(LineTooLong) -> Step {
        let start = min(scanned, buffered.count)
        guard let newline = buffered[start...].firstIndex(of: 0x0A) else {
            scanned = buffered.count
            if scanned > maxLineBytes { throw LineTooLong(limit: maxLineBytes) }
            return .needMoreData
        }
        if newline > maxLineBytes { throw LineTooLong(limit: maxLineBytes) }
        scanned = 0
        let length = newline > 0 && buffered[newline - 1] == 0x0D ? newline - 1 : newline
        return .line(length: length, consumed: newline + 1)
    }
}
