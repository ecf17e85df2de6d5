import Testing
@testable import SMETSDUIS

/// duis.md §6.11: UTRN decoding and the checks lab mode makes (check digit, value class, counter).
@Suite struct UTRNTests {
    /// A UTRN for the token fields, built here from the spec's description: N = offset + token,
    /// then the check digit. The digit's algorithm is pinned by the spec's example below.
    static func make(counter: UInt64, valueClass: UInt64, value: UInt64, reserved: UInt64 = 0, mac: UInt64 = 0x1C2D_3E4F) -> String {
        let high = reserved << 25 | counter << 15 | valueClass << 13 | value
        let number = String(7_394_156_990_786_306_048 + (high << 32 | mac))
        return number + String(UTRN.checkDigit(number.utf8.map { $0 - 0x30 }))
    }

    @Test func theSpecsExample() throws {
        let utrn = try UTRN.decode("73951443011611684638", requestCounter: 30_064_771_072)
        #expect(utrn.pence == 500 && utrn.valueClass == .pennies && utrn.value == 500 && utrn.counter == 7)
        #expect(30_064_771_072 == UInt64(7) << 32)
        #expect(UTRN.checkDigit("7395144301161168463".utf8.map { $0 - 0x30 }) == 8)
        #expect(Self.make(counter: 7, valueClass: 0, value: 500, mac: 0x1C2D_3E4F) == "73951443011611684638")
    }

    /// The UTRN of `R:2.2_CS01a/CS01a_2.2_SUCCESS_COMMAND_GBCS.HEX`, sent with counter 3 << 32: £10, counter 3.
    @Test func theRTDSTopUp() throws {
        let utrn = try UTRN.decode("73946144332040217315", requestCounter: 3 << 32)
        #expect(utrn.valueClass == .pounds && utrn.value == 10 && utrn.pence == 1000 && utrn.counter == 3)
    }

    @Test func poundsAreHundredsOfPence() throws {
        let utrn = try UTRN.decode(Self.make(counter: 3, valueClass: 1, value: 20), requestCounter: 3 << 32)
        #expect(utrn.valueClass == .pounds && utrn.pence == 2000)
        let most = try UTRN.decode(Self.make(counter: 1023, valueClass: 1, value: 8191), requestCounter: 1023 << 32 | 0xFFFF)
        #expect(most.pence == 819_100 && most.counter == 1023)
    }

    @Test func refusals() {
        func refusal(_ text: String, _ counter: UInt64) -> UTRN.Refusal? {
            do throws(UTRN.Refusal) { _ = try UTRN.decode(text, requestCounter: counter); return nil } catch { return error }
        }
        #expect(refusal("73951443011611684637", 7 << 32) == .checkDigit(expected: 8))
        #expect(refusal("7395144301161168463", 7 << 32) == .form)
        #expect(refusal("7395144301161168463A", 7 << 32) == .form)
        #expect(refusal("73951443011611684638 ", 7 << 32) == .form)
        // Sent with the wrong RequestID counter: 30064771072 is 7 << 32, 1001 has counter bits 0.
        #expect(refusal("73951443011611684638", 1001) == .counter(utrn: 7, request: 0))
        #expect(refusal("73951443011611684638", 8 << 32) == .counter(utrn: 7, request: 8))
        #expect(refusal(Self.make(counter: 1, valueClass: 2, value: 5), 1 << 32) == .valueClass(2))
        #expect(refusal(Self.make(counter: 1, valueClass: 3, value: 5), 1 << 32) == .valueClass(3))
        #expect(refusal(Self.make(counter: 1, valueClass: 0, value: 5, reserved: 1), 1 << 32) == .reservedBits)
        // Below the offset: no token at all.
        let low = "1000000000000000000"
        #expect(refusal(low + String(UTRN.checkDigit(low.utf8.map { $0 - 0x30 })), 0) == .outOfRange)
    }

    /// Every single-digit change of a valid UTRN is caught by the check digit (Verhoeff's property).
    @Test func singleDigitErrorsAreCaught() {
        let good = Array("73951443011611684638".utf8)
        for position in 0..<20 {
            for digit in UInt8(0x30)...UInt8(0x39) where digit != good[position] {
                var changed = good
                changed[position] = digit
                #expect((try? UTRN.decode(String(decoding: changed, as: UTF8.self), requestCounter: 7 << 32)) == nil)
            }
        }
    }
}
