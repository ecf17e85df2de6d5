import SMETSRPC

/// The error `text` fails with, or nil when it parses.
func parseFailure(_ text: String, limits: JSONLimits = .default) -> JSONParseError? {
    do {
        _ = try JSONValue.parse(text, limits: limits)
        return nil
    } catch {
        return error
    }
}

func parseFailure(bytes: [UInt8], limits: JSONLimits = .default) -> JSONParseError? {
    do {
        _ = try JSONValue.parse(bytes, limits: limits)
        return nil
    } catch {
        return error
    }
}

/// SplitMix64: a small deterministic generator, so every run tests the same inputs.
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
}

/// A random JSON value of bounded depth, without NaN (which is not equal to itself).
func randomValue(depth: Int, using rng: inout SplitMix64) -> JSONValue {
    let choice = Int.random(in: 0..<(depth > 0 ? 8 : 6), using: &rng)
    switch choice {
    case 0: return .null
    case 1: return .bool(Bool.random(using: &rng))
    case 2:
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: return .int(.min)
        case 1: return .int(.max)
        default: return .int(Int64.random(in: -1_000_000...1_000_000, using: &rng))
        }
    case 3:
        let candidates: [Double] = [0.1, -2.5, 1e300, -1e-300, 5.0, 123456.789, 2.2250738585072014e-308, -0.0]
        if Bool.random(using: &rng) { return .double(candidates.randomElement(using: &rng)!) }
        return .double(Double.random(in: -1e12...1e12, using: &rng))
    case 4, 5: return .string(randomString(using: &rng))
    case 6:
        let count = Int.random(in: 0..<5, using: &rng)
        return .array((0..<count).map { _ in randomValue(depth: depth - 1, using: &rng) })
    default:
        let count = Int.random(in: 0..<5, using: &rng)
        var object: [String: JSONValue] = [:]
        for _ in 0..<count { object[randomString(using: &rng)] = randomValue(depth: depth - 1, using: &rng) }
        return .object(object)
    }
}

func randomString(using rng: inout SplitMix64) -> String {
    let pool: [Unicode.Scalar] = [
        "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\r", "\t", "\u{0}", "\u{1F}", "\u{7F}", "é", "€",
        "\u{2028}", "😀", "𝄞", "\u{FFFD}", "\u{FEFF}",
    ]
    let count = Int.random(in: 0..<12, using: &rng)
    var scalars = String.UnicodeScalarView()
    for _ in 0..<count { scalars.append(pool.randomElement(using: &rng)!) }
    return String(scalars)
}
