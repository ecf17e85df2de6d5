import SMETSCore
import SMETSRPC

extension ControlRouter {
    static func tenancyMethods(engine: Engine) -> [ControlMethod] {
        [
            // The consumer at the display's keypad: settings are consumer data (Change of Tenancy bit 9).
            ControlMethod(name: "display.settings") { params, _ in
                let id = try params.requiredEUI("device")
                var changes: [String: String] = [:]
                if let set = params.object["set"], !set.isNull {
                    guard case .object(let members) = set else { throw JSONRPCError.invalidParams("set must be an object of setting names to strings") }
                    for (key, value) in members {
                        guard let text = value.stringValue else { throw JSONRPCError.invalidParams("set.\(key) must be a string") }
                        changes[key] = text
                    }
                }
                let settings = changes.isEmpty ? try engine.consumerSettings(id) : try engine.setConsumerSettings(id, changes)
                return ["device": .string(id.description), "settings": .object(settings.mapValues { .string($0) })]
            },
            ControlMethod(name: "tenancy.change") { params, _ in
                var premises: [String] = []
                if let one = try params.string("premises") { premises = [one] }
                if let many = try params.stringList("premisesList") { premises += many }
                guard !premises.isEmpty else { throw JSONRPCError.invalidParams("give premises (an ID) or premisesList") }
                let control = try params.int("control").map { UInt32(truncatingIfNeeded: $0) } ?? TenancyRules.clearAllOccupantData
                let time = try params.time("implementationTime")
                let result = try engine.changeTenancy(premises: premises, control: control, implementationTime: time)
                return [
                    "premises": .array(result.premises.map { .string($0) }),
                    "implementationTime": .string(result.implementationTime.rfc3339),
                    "pending": .bool(result.pending),
                    "control": .int(Int64(control)),
                    "devices": .array(result.notified.map { id in
                        var entry: [String: JSONValue] = ["id": .string(id.description)]
                        if let cleared = result.cleared[id] {
                            entry["cleared"] = .object(Dictionary(uniqueKeysWithValues: cleared.map { ($0.key.rawValue, JSONValue.int(Int64($0.value))) }))
                        }
                        return .object(entry)
                    }),
                ]
            },
            ControlMethod(name: "supplier.change") { params, _ in
                let premises = try params.requiredString("premises")
                guard let providerText = try params.string("provider"), let provider = UInt32(providerText, radix: 16) else {
                    throw JSONRPCError.invalidParams("provider must be the new supplier's ID in hex, e.g. 0000ABCD")
                }
                let notified = try engine.changeSupplier(premises: premises, provider: provider, name: try params.string("name") ?? "")
                return ["premises": .string(premises), "provider": .string(upperHex(provider, width: 8)), "notified": .array(notified.map { .string($0.description) })]
            },
        ]
    }
}
