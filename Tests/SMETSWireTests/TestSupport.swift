@testable import SMETSWire

/// Bytes from a hex dump such as `"1E F1 EE 0B"`; whitespace is ignored.
func hex(_ text: String) -> [UInt8] {
    let digits = text.filter { !$0.isWhitespace }
    precondition(digits.count % 2 == 0, "odd hex digit count in test vector")
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        guard let byte = UInt8(digits[index..<next], radix: 16) else { preconditionFailure("bad hex in test vector") }
        bytes.append(byte)
        index = next
    }
    return bytes
}

/// SplitMix64: a deterministic generator, so that a failing random case reproduces.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
    }
}

/// Decodes `bytes` as `T`, returning the typed error instead of throwing it.
func decodeResult<T: ZCLPayload>(_: T.Type, _ bytes: ArraySlice<UInt8>) -> Result<T, WireError> {
    do throws(WireError) {
        return .success(try T(decoding: bytes))
    } catch {
        return .failure(error)
    }
}
