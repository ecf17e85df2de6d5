/// A GB prepayment UTRN (duis.md §6.11): 20 digits, a 19-digit number N then a Verhoeff check
/// digit. N − ``offset`` is a 64-bit token whose high 32 bits carry 7 zero bits, a 10-bit counter,
/// a 2-bit value class and a 13-bit value; the low 32 bits are a GMAC that lab mode does not check.
public struct UTRN: Hashable, Sendable {
    public enum ValueClass: UInt8, Sendable, Hashable {
        case pennies = 0, pounds = 1
    }

    /// The counter bits: bits 32-41 of the RequestID counter the top-up is sent with.
    public var counter: UInt16
    public var valueClass: ValueClass
    /// The value in the unit of ``valueClass``.
    public var value: UInt16
    /// The low 32 bits of the token (the GMAC; not checked in lab mode).
    public var mac: UInt32

    /// The value in pence.
    public var pence: Int32 { valueClass == .pounds ? Int32(value) * 100 : Int32(value) }

    /// What N is offset by before it is read as a token.
    public static let offset: UInt64 = 7_394_156_990_786_306_048

    public enum Refusal: Error, Hashable, Sendable, CustomStringConvertible {
        /// Not exactly 20 decimal digits.
        case form
        /// The last digit is not N's Verhoeff check digit.
        case checkDigit(expected: UInt8)
        /// N lies below the offset, so it is no token.
        case outOfRange
        /// One of the seven top bits of the token is set.
        case reservedBits
        /// Value class 2 or 3: neither pennies nor pounds.
        case valueClass(UInt8)
        /// The counter bits do not match bits 32-41 of the RequestID counter.
        case counter(utrn: UInt16, request: UInt16)

        public var description: String {
            switch self {
            case .form: "a UTRN is exactly 20 decimal digits"
            case .checkDigit(let expected): "the check digit does not match (expected \(expected))"
            case .outOfRange: "the number is below the UTRN offset"
            case .reservedBits: "the token's seven reserved bits are not zero"
            case .valueClass(let value): "value class \(value) is neither pennies (0) nor pounds (1)"
            case .counter(let utrn, let request): "the UTRN counter \(utrn) is not the RequestID counter's \(request) (its bits 32-41)"
            }
        }
    }

    /// Decodes `text` and checks it against the RequestID counter it was sent with: form, check
    /// digit, range, reserved bits, value class, counter (duis.md §6.11; the GMAC is lab mode's to skip).
    public static func decode(_ text: String, requestCounter: UInt64) throws(Refusal) -> UTRN {
        let digits = Array(text.utf8)
        guard digits.count == 20, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { throw Refusal.form }
        let body = digits.prefix(19).map { $0 - 0x30 }
        let expected = checkDigit(body)
        guard digits[19] - 0x30 == expected else { throw Refusal.checkDigit(expected: expected) }
        // 19 digits are below 10^19 < 2^64, so N fits in UInt64.
        let number = body.reduce(UInt64(0)) { $0 * 10 + UInt64($1) }
        guard number >= offset else { throw Refusal.outOfRange }
        let token = number - offset
        let high = UInt32(truncatingIfNeeded: token >> 32)
        guard high >> 25 == 0 else { throw Refusal.reservedBits }
        let rawClass = UInt8(truncatingIfNeeded: (high >> 13) & 0x3)
        guard let valueClass = ValueClass(rawValue: rawClass) else { throw Refusal.valueClass(rawClass) }
        let counter = UInt16(truncatingIfNeeded: (high >> 15) & 0x3FF)
        let expectedCounter = UInt16(truncatingIfNeeded: (requestCounter >> 32) & 0x3FF)
        guard counter == expectedCounter else { throw Refusal.counter(utrn: counter, request: expectedCounter) }
        return UTRN(counter: counter, valueClass: valueClass, value: UInt16(truncatingIfNeeded: high & 0x1FFF), mac: UInt32(truncatingIfNeeded: token))
    }

    // The standard Verhoeff tables: d the dihedral group D5's multiplication, p the position permutations.
    static let d: [[UInt8]] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6], [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1], [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ]
    static let p: [[UInt8]] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2], [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1], [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ]
    /// The spec's output mapping of the final state to the check digit.
    static let j: [UInt8] = [1, 2, 6, 7, 5, 8, 3, 0, 9, 4]

    /// duis.md §6.11: c = 0, k = 4; per digit left to right c = d[c][p[k][digit]], k = (k+1) mod 8; j[c].
    public static func checkDigit(_ digits: some Sequence<UInt8>) -> UInt8 {
        var c = 0, k = 4
        for digit in digits {
            c = Int(d[c][Int(p[k][Int(digit % 10)])])
            k = (k + 1) % 8
        }
        return j[c]
    }
}
