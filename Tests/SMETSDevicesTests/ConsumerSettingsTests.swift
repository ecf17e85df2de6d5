import SMETSCore
import SMETSWire
import Testing
@testable import SMETSDevices

/// SECMP0056 conclusions report (seed 003), "Summary of conclusions": what the consumer entered on a
/// display is consumer data, cleared with bit 9 ("clear IHD data (consumer)"); these are the ways it
/// is made, at the keypad and over the HAN.
@Suite("ConsumerSettings")
struct ConsumerSettingsTests {
    static let now = Timestamp(unixMillis: 1_800_000_000_000)
    static let code: UInt16 = 0x1234
    static let machine = ConsumerSettings(model: "brightview-ihd", manufacturerCode: code)

    static func set(_ pairs: [(String, String)], held: [String: String] = [:], keeps: Bool = true) -> [ConsumerSettings.Action] {
        machine.receive(.set(pairs.map { .init(name: $0.0, value: $0.1) }, held: held, keepsConsumerData: keeps, now: now))
    }

    static func write(_ records: [WriteAttributes.Record], code: UInt16? = code, held: [String: String] = [:], keeps: Bool = true) -> [ConsumerSettings.Action] {
        machine.receive(.writeAttributes(WriteAttributes(records: records), manufacturerCode: code, held: held, keepsConsumerData: keeps, now: now))
    }

    static func setting(_ text: String?) -> WriteAttributes.Record { .init(attributeID: ConsumerSettings.attributeID, value: .charString(text)) }

    @Test("the keypad's settings are kept with their time and named in the change, never their values")
    func keypad() {
        #expect(Self.set([("budget", "300"), ("alert", "on")]) == [
            .persist(.init(name: "budget", value: "300"), time: Self.now), .persist(.init(name: "alert", value: "on"), time: Self.now),
            .changed(["alert", "budget"]),
        ])
        #expect(Self.set([]).isEmpty)
    }

    @Test("the keypad refuses a model without consumer data, a bad name, a long value, a 33rd setting, and keeps nothing")
    func keypadRefusals() {
        #expect(Self.set([("budget", "1")], keeps: false) == [.refuse(.notKept(model: "brightview-ihd"))])
        for name in ["", "has space", "a=b", String(repeating: "n", count: 33), "caf\u{E9}"] {
            #expect(Self.set([("ok", "1"), (name, "1")]) == [.refuse(.badName(name))])
        }
        #expect(Self.set([("budget", String(repeating: "9", count: 65))]) == [.refuse(.valueTooLong(name: "budget"))])
        let full = Dictionary(uniqueKeysWithValues: (0..<32).map { ("s\($0)", "v") })
        #expect(Self.set([("one-more", "1")], held: full) == [.refuse(.full)])
        #expect(Self.set([("s0", "changed")], held: full).first == .persist(.init(name: "s0", value: "changed"), time: Self.now), "a held name may change")
        #expect(Self.machine.storeFailed(.set([], held: [:], keepsConsumerData: true, now: Self.now)).isEmpty)
    }

    @Test("Write Attributes of name=value strings with the manufacturer's code sets each; the response is one SUCCESS")
    func overTheHAN() {
        #expect(Self.write([Self.setting("budget=300"), Self.setting("unit=kWh")]) == [
            .persist(.init(name: "budget", value: "300"), time: Self.now), .persist(.init(name: "unit", value: "kWh"), time: Self.now),
            .changed(["budget", "unit"]), .respond(WriteAttributesResponse(failures: [])),
        ])
        #expect(Self.write([Self.setting("empty=")]).first == .persist(.init(name: "empty", value: ""), time: Self.now))
    }

    @Test("each record that is not a setting gets its ZCL status; the others are still written")
    func overTheHANRefusals() {
        let id = ConsumerSettings.attributeID
        let actions = Self.write([
            Self.setting("budget=300"),
            .init(attributeID: BasicAttribute.swBuildID, value: .charString("x=y")),
            .init(attributeID: id, value: .uint8(1)),
            Self.setting("no equals"),
            Self.setting(nil),
            Self.setting("bad name=1"),
            Self.setting("long=" + String(repeating: "v", count: 65)),
        ])
        #expect(actions == [
            .persist(.init(name: "budget", value: "300"), time: Self.now), .changed(["budget"]),
            .respond(WriteAttributesResponse(failures: [
                .init(status: .unsupportedAttribute, attributeID: BasicAttribute.swBuildID), .init(status: .invalidDataType, attributeID: id),
                .init(status: .invalidValue, attributeID: id), .init(status: .invalidValue, attributeID: id),
                .init(status: .invalidValue, attributeID: id), .init(status: .invalidValue, attributeID: id),
            ])),
        ])
        // Another manufacturer's code, or none: not this display's attribute.
        for code in [UInt16?.none, 0x9999] {
            #expect(Self.write([Self.setting("budget=1")], code: code) == [.respond(WriteAttributesResponse(failures: [.init(status: .unsupportedAttribute, attributeID: id)]))])
        }
        #expect(Self.write([Self.setting("budget=1")], keeps: false) == [.respond(WriteAttributesResponse(failures: [.init(status: .unsupportedAttribute, attributeID: id)]))])
        let full = Dictionary(uniqueKeysWithValues: (0..<32).map { ("s\($0)", "v") })
        #expect(Self.write([Self.setting("new=1"), Self.setting("s1=w")], held: full) == [
            .persist(.init(name: "s1", value: "w"), time: Self.now), .changed(["s1"]),
            .respond(WriteAttributesResponse(failures: [.init(status: .insufficientSpace, attributeID: id)])),
        ])
        #expect(Self.machine.storeFailed(.writeAttributes(WriteAttributes(records: [Self.setting("a=1"), Self.setting("b=2")]), manufacturerCode: Self.code,
                                                          held: [:], keepsConsumerData: true, now: Self.now))
            == [.respond(WriteAttributesResponse(failures: [.init(status: .failure, attributeID: id), .init(status: .failure, attributeID: id)]))])
    }
}
