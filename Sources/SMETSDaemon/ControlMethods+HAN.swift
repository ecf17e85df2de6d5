import SMETSCore
import SMETSDevices
import SMETSRPC
import SMETSWire

extension ControlRouter {
    static func hanMethods(engine: Engine) -> [ControlMethod] {
        [
            // A ZCL frame from one emulated device to another (or out to the rigs attached to it).
            ControlMethod(name: "han.send") { params, _ in
                let from = try params.requiredEUI("from")
                let to = try params.requiredEUI("to")
                _ = try engine.requireDevice(from)
                guard let clusterText = try params.string("cluster"), let cluster = UInt16(clusterText.replacingOccurrences(of: "0x", with: ""), radix: 16) else {
                    throw JSONRPCError.invalidParams("cluster must be 4 hex digits, e.g. 0703")
                }
                guard let hex = try params.string("zcl"), hex.count % 2 == 0, hex.count >= 6, hex.count <= 2 * 4000,
                      let zcl = Optional(stride(from: 0, to: hex.count, by: 2).compactMap({ offset -> UInt8? in
                          let start = hex.index(hex.startIndex, offsetBy: offset)
                          return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)
                      })), zcl.count * 2 == hex.count else {
                    throw JSONRPCError.invalidParams("zcl must be the ZCL frame in hex (header and payload, at least 3 bytes)")
                }
                guard let frame = try? ZCLFrame(decoding: zcl) else { throw JSONRPCError.invalidParams("zcl is not a ZCL frame") }
                // A frame the device could not send (a meter's message it could not keep) is the caller's error.
                if let error = engine.emit([OutgoingZCL(from: from, to: to, cluster: cluster, frame: frame)]).first { throw error }
                return ["sent": true, "trace": .array(traceJSON(engine.tracedFrames(from, limit: 10)))]
            },
            ControlMethod(name: "han.trace") { params, _ in
                let id = try params.requiredEUI("device")
                _ = try engine.requireDevice(id)
                let limit = Int(try params.int("limit") ?? 50)
                guard (1...FrameTraces.perDevice).contains(limit) else { throw JSONRPCError.invalidParams("limit must be 1...\(FrameTraces.perDevice)") }
                return ["device": .string(id.description), "frames": .array(traceJSON(engine.tracedFrames(id, limit: limit)))]
            },
            // A PPMID tops up at its premises' meter: ConsumerTopUp over the HAN, answered by the meter.
            ControlMethod(name: "han.topUp") { params, _ in
                let id = try params.requiredEUI("device")
                let code = try params.requiredString("code")
                let result = try engine.topUp(from: id, code: code, gas: try params.string("fuel") == "gas")
                return [
                    "result": .int(Int64(result.result)), "accepted": .bool(result.result == 0), "value": .int(Int64(result.topUpValue)),
                    "creditRemaining": .int(Int64(result.creditRemaining)),
                ]
            },
            // The supplier sets a meter's debt and how it accrues (each day) and is recovered (a share of each top-up).
            ControlMethod(name: "meter.debt") { params, _ in
                let id = try params.requiredEUI("device")
                func pence(_ key: String) throws -> Int32? {
                    guard let value = try params.int(key) else { return nil }
                    guard (0...Int64(Prepayment.maxDebt)).contains(value) else {
                        throw JSONRPCError.invalidParams("\(key) must be 0...\(Prepayment.maxDebt) pence")
                    }
                    return Int32(value)
                }
                let percent = try params.int("recoveryPercent")
                if let percent, !(0...100).contains(percent) { throw JSONRPCError.invalidParams("recoveryPercent must be 0...100") }
                let balance = try engine.configureDebt(id, debt: try pence("debt"), perDay: try pence("perDay"), recoveryPercent: percent.map { UInt8($0) })
                return [
                    "device": .string(id.description), "credit": .int(Int64(balance.credit)), "emergencyCredit": .int(Int64(balance.emergencyCredit)),
                    "debt": .int(Int64(balance.debt)), "perDay": .int(Int64(balance.debtPerDay)), "recoveryPercent": .int(Int64(balance.recoveryPercent)),
                ]
            },
        ]
    }
}

extension ControlRouter {
    /// Traced frames as `han.trace` and `han.send` return them: named, with time, direction and peer.
    static func traceJSON(_ frames: [TracedFrame]) -> [JSONValue] {
        frames.map { frame in
            var data = FrameNames.describe(cluster: frame.cluster, zcl: frame.zcl).mapValues(\.json)
            data["time"] = .string(frame.time.rfc3339)
            data["direction"] = .string(frame.direction.rawValue)
            data["peer"] = .string(frame.peer.description)
            return .object(data)
        }
    }
}

extension Engine {
    /// A PPMID sends ConsumerTopUp to its ESME (or GPF), and the answer comes back over the same path.
    func topUp(from id: EUI64, code: String, gas: Bool) throws -> ConsumerTopUpResponse {
        let ppmid = try requireDevice(id)
        guard ppmid.type == .ppmid else { throw DomainError(.invalidState, "\(id) is a \(ppmid.type); top-ups are sent by a PPMID") }
        guard ppmid.hub != nil else { throw DomainError(.notJoined, "\(id) has not joined a Communications Hub, so it cannot reach a meter") }
        let meterType: DeviceType = gas ? .gpf : .esme
        guard let meter = state.read({ state in state.premises[ppmid.premisesID]?.first { state.devices[$0]?.type == meterType } }) else {
            throw DomainError(.invalidState, "premises \(ppmid.premisesID) has no \(meterType)")
        }
        let request = ConsumerTopUp(originatingDevice: 0x02, topUpCode: Array(code.utf8))
        let frame = ZCLFrame(request, sequenceNumber: UInt8.random(in: 0...255), disableDefaultResponse: true)
        emit([OutgoingZCL(from: id, to: meter, cluster: ZCLClusterID.prepayment, frame: frame)])
        // The meter's answer is the last frame it sent to this PPMID.
        guard let answer = traces.frames(meter).last(where: { $0.direction == .outgoing && $0.peer == id }),
              let decoded = try? ZCLFrame(decoding: answer.zcl), let response = try? decoded.decodePayload(as: ConsumerTopUpResponse.self) else {
            throw DomainError(.invalidState, "the meter did not answer the top-up")
        }
        return response
    }
}
