/// Bytes read from a stream, cut into `\n`-terminated lines.
///
/// A value type with no I/O: the client feeds it what `recv` returned and takes lines out.
struct LineBuffer {
    /// The longest line accepted, without its newline.
    let maxLineLength: Int
    private var storage: [UInt8] = []
    /// Where the unconsumed bytes start.
    private var start = 0
    /// How far past `start` is known to hold no newline.
    private var scanned = 0

    init(maxLineLength: Int) { self.maxLineLength = maxLineLength }

    enum LineError: Error, Equatable { case tooLong(limit: Int) }

    var isEmpty: Bool { start == storage.count }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0, start >= storage.count / 2 {
            storage.removeSubrange(0..<start)
            start = 0
        }
        storage.append(contentsOf: bytes)
    }

    /// The next complete line without its `\n` (and a `\r` before it), or nil when none is complete.
    mutating func nextLine() throws(LineError) -> ArraySlice<UInt8>? {
        var index = start + scanned
        while index < storage.count {
            if storage[index] == 0x0A {
                var end = index
                if end > start, storage[end - 1] == 0x0D { end -= 1 }
                let line = storage[start..<end]
                start = index + 1
                scanned = 0
                if line.count > maxLineLength { throw .tooLong(limit: maxLineLength) }
                return line
            }
            index += 1
        }
        scanned = storage.count - start
        if scanned > maxLineLength { throw .tooLong(limit: maxLineLength) }
        return nil
    }
}
