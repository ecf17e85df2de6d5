/// One libFuzzer target: a name (`scripts/fuzz NAME`), what it feeds, and the property it checks.
///
/// `check` is the whole target: it runs the parser on the input and returns nil when every
/// property held, or a sentence saying which one broke. The fuzz executables trap on that sentence
/// (so libFuzzer records a crasher); the unit tests replay every saved fail case and seed through
/// the same function, so a fixed defect stays fixed without a sanitizer build.
public struct FuzzTarget: Sendable {
    public var name: String
    public var summary: String
    public var check: @Sendable ([UInt8]) -> String?

    public init(name: String, summary: String, check: @escaping @Sendable ([UInt8]) -> String?) {
        self.name = name
        self.summary = summary
        self.check = check
    }

    /// Every target, in the order `scripts/fuzz` runs them.
    public static let all: [FuzzTarget] = [
        hanStream, zcl, otaImage, json, jsonRPC, labJSON, modelJSON, cplCSV, settingsJSON, accessJSON, duisXML,
        hanLinkSequence, controlLines,
    ]

    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }

    /// The body of `LLVMFuzzerTestOneInput`: copies libFuzzer's bytes and traps when a property breaks.
    public func run(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
        let bytes = start.map { Array(UnsafeRawBufferPointer(start: $0, count: count)) } ?? []
        if let failure = check(bytes) {
            fatalError("\(name): \(failure)")
        }
        return 0
    }
}

/// Reads a fuzz input's leading control bytes; past the end it reads zeros, so every input is usable.
struct FuzzInput {
    private let bytes: [UInt8]
    private(set) var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    /// What is left after the control bytes: the data under test.
    var rest: [UInt8] { index < bytes.count ? Array(bytes[index...]) : [] }
}

/// `stream` cut into pieces of the given lengths (clamped to what is left), the rest in one last piece:
/// how the stream targets feed a decoder the way a socket's reads would.
func cut(_ stream: [UInt8], at lengths: [Int]) -> [ArraySlice<UInt8>] {
    var pieces: [ArraySlice<UInt8>] = []
    var offset = 0
    for length in lengths {
        let end = min(stream.count, offset + length)
        pieces.append(stream[offset..<end])
        offset = end
    }
    pieces.append(stream[offset...])
    return pieces
}

/// Hex for failure messages.
func hex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { byte in
        let digits = Array("0123456789abcdef")
        return String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0x0F)])
    }.joined()
}
