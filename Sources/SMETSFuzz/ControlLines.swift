import SMETSRPC

extension FuzzTarget {
    /// The control socket's line framing (`LineSplitter`, behind the daemon's `LineFrameDecoder`), fed
    /// in arbitrary pieces as a client's writes arrive.
    ///
    /// Input: a control byte (bits 0-4: how many split lengths follow; bit 5: a 16-byte line limit
    /// instead of 4096; bit 6: also feed the stream one byte at a time), the split lengths, then the
    /// stream. Properties: however the stream is cut, the lines and the refusal are those of a
    /// reference split written independently here (lines end at `\n`, one `\r` before it dropped, a
    /// line over the limit refused, counting its `\r`, also when its newline has not arrived yet); no
    /// line holds a newline; nothing is read past the buffer (ASan).
    public static let controlLines = FuzzTarget(
        name: "control-lines",
        summary: "LineSplitter (the control API's framing) over arbitrary splits of a client's stream"
    ) { bytes in
        var input = FuzzInput(bytes)
        let control = input.byte()
        let splits = (0..<Int(control & 0x1F)).map { _ in Int(input.byte()) }
        let limit = control & 0x20 != 0 ? 16 : 4096
        let stream = input.rest

        let expected = referenceLines(stream, limit: limit)
        let pieces = cut(stream, at: splits)
        var cuts = [("split", pieces), ("whole", [stream[...]])]
        if control & 0x40 != 0 { cuts.append(("byte-at-a-time", stream.indices.map { stream[$0...$0] })) }
        for (label, pieces) in cuts {
            let got = splitLines(pieces, limit: limit)
            if got.lines != expected.lines {
                return "\(label): lines \(got.lines.map { hex($0) }) where the reference has \(expected.lines.map { hex($0) })"
            }
            if got.refused != expected.refused {
                return "\(label): refused \(got.refused) where the reference says \(expected.refused)"
            }
            if got.lines.contains(where: { $0.contains(0x0A) }) { return "\(label): a line holds a newline" }
        }
        return nil
    }

    /// The splitter as the channel handler drives it: bytes appended as they arrive, lines taken off
    /// the front, the first refusal ends the stream.
    static func splitLines(_ pieces: [ArraySlice<UInt8>], limit: Int) -> (lines: [[UInt8]], refused: Bool) {
        var splitter = LineSplitter(maxLineBytes: limit)
        var buffered: [UInt8] = []
        var lines: [[UInt8]] = []
        for piece in pieces {
            buffered += piece
            while true {
                let step: LineSplitter.Step
                do {
                    step = try buffered.withUnsafeBytes { bytes throws(LineSplitter.LineTooLong) in try splitter.step(bytes) }
                } catch {
                    return (lines, true)
                }
                guard case let .line(length, consumed) = step else { break }
                guard length <= consumed, consumed <= buffered.count else { return (lines + [[0x0A]], false) }  // caught by the compare
                lines.append(Array(buffered[..<length]))
                buffered.removeFirst(consumed)
            }
        }
        return (lines, false)
    }

    /// The rules, written without the splitter: every complete line in order until one is longer
    /// than the limit; an unterminated tail longer than the limit is refused too.
    static func referenceLines(_ stream: [UInt8], limit: Int) -> (lines: [[UInt8]], refused: Bool) {
        var lines: [[UInt8]] = []
        var rest = stream[...]
        while let newline = rest.firstIndex(of: 0x0A) {
            var line = rest[..<newline]
            if line.count > limit { return (lines, true) }
            if line.last == 0x0D { line = line.dropLast() }
            lines.append(Array(line))
            rest = rest[(newline + 1)...]
        }
        return (lines, rest.count > limit)
    }
}
