import SMETSRPC
import Testing

@Suite("LineSplitter: the control API's line framing")
struct LineSplitterTests {
    /// Feeds `pieces` as a channel would and returns the lines, or the refusal once one comes.
    func split(_ pieces: [String], limit: Int = 16) -> (lines: [String], refused: LineSplitter.LineTooLong?) {
        var splitter = LineSplitter(maxLineBytes: limit)
        var buffered: [UInt8] = []
        var lines: [String] = []
        for piece in pieces {
            buffered += Array(piece.utf8)
            while true {
                do {
                    let step = try buffered.withUnsafeBytes { bytes throws(LineSplitter.LineTooLong) in try splitter.step(bytes) }
                    guard case let .line(length, consumed) = step else { break }
                    lines.append(String(decoding: buffered[..<length], as: UTF8.self))
                    buffered.removeFirst(consumed)
                } catch {
                    return (lines, error as? LineSplitter.LineTooLong)
                }
            }
        }
        return (lines, nil)
    }

    @Test("lines end at a newline; a carriage return before it is dropped; empty lines are lines")
    func lines() {
        let result = split(["one\ntwo\r\n\nthree"])
        #expect(result.lines == ["one", "two", ""])
        #expect(result.refused == nil)
    }

    @Test("a line cut anywhere comes out whole, once its newline arrives")
    func pieces() {
        #expect(split(["{\"a\"", ":1}\r", "\n", "x"]).lines == ["{\"a\":1}"])
        #expect(split(["ab", "c", "", "\n"]).lines == ["abc"])
    }

    @Test("a line of exactly the limit passes; one byte more is refused, its carriage return counted")
    func limit() {
        #expect(split([String(repeating: "x", count: 16) + "\n"]).lines.count == 1)
        #expect(split([String(repeating: "x", count: 17) + "\n"]).refused?.limit == 16)
        #expect(split([String(repeating: "x", count: 16) + "\r\n"]).refused?.limit == 16)
    }

    @Test("an endless line is refused as soon as the limit is passed, before its newline comes")
    func endless() {
        let result = split(["ok\n", String(repeating: "y", count: 10), String(repeating: "y", count: 7)])
        #expect(result.lines == ["ok"])
        #expect(result.refused?.limit == 16)
        #expect(result.refused?.description.contains("maxControlLineBytes") == true)
    }

    @Test("what follows a line stays buffered: a partial line under the limit waits")
    func waits() {
        let result = split(["line\npartial"])
        #expect(result.lines == ["line"])
        #expect(result.refused == nil)
    }
}
