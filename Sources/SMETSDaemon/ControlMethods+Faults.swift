import Foundation
import NIOCore
import SMETSCore
import SMETSDevices
import SMETSRPC
import SMETSWire

extension ControlRouter {
    static func faultMethods(engine: Engine) -> [ControlMethod] {
        [
            ControlMethod(name: "faults.add") { params, _ in
                let rule = try faultRule(params, engine: engine)
                // Disconnect and power cycle with no window act now, as a one-off; they keep no rule
                // (a disconnect on a link closes that link now).
                let immediate = rule.from == nil && rule.afterFrames == 0 && rule.after == nil && rule.cluster == nil && rule.command == nil
                if immediate, case .device(let id) = rule.target, rule.kind == .disconnect || rule.kind == .powerCycle {
                    if rule.kind == .powerCycle { engine.powerCycle(id) } else { engine.faults.dropLinks(of: id) }
                    engine.events.publish(.faultApplied, device: id, time: engine.now(), data: [
                        "rule_id": .null, "fault": .string(rule.kind.name), "detail": "now",
                    ], level: .notice, message: "fault applied")
                    return ["applied": .string(rule.kind.name), "device": .string(id.description), "rule": .null]
                }
                if immediate, case .link(let link) = rule.target, rule.kind == .disconnect, let info = engine.links.info(link) {
                    engine.faults.closeLink(link)
                    engine.events.publish(.faultApplied, device: info.device, time: engine.now(), data: [
                        "rule_id": .null, "fault": "disconnect", "detail": .string("link \(link) closed now"), "link": .int(Int64(link)),
                    ], level: .notice, message: "fault applied")
                    return ["applied": "disconnect", "device": .string(info.device.description), "link": .int(Int64(link)), "rule": .null]
                }
                let limit = engine.lab.settings.maxFaultRules
                let added = engine.faults.change { faults -> Result<FaultRule, FaultRuleError> in
                    guard faults.count < limit else { return .failure(FaultRuleError(message: "\(limit) rules are set already (maxFaultRules); remove one first")) }
                    return faults.add(rule)
                }
                switch added {
                case .success(let rule):
                    engine.logger.notice("fault rule added", metadata: ["event": "fault.added", "rule_id": .stringConvertible(rule.id), "fault": .string(rule.kind.name)])
                    return ruleJSON(rule, FaultCounters())
                case .failure(let error):
                    throw JSONRPCError.invalidParams(error.message)
                }
            },
            ControlMethod(name: "faults.list") { _, _ in
                ["rules": .array(engine.faults.rules.map { ruleJSON($0.rule, $0.counters) })]
            },
            ControlMethod(name: "faults.remove") { params, _ in
                guard let id = try params.int("id") else { throw JSONRPCError.invalidParams("missing id (a rule ID from faults.list)") }
                guard let held = engine.faults.change({ $0.remove(Int(clamping: id)) }) else {
                    throw DomainError(.invalidState, "no fault rule \(id); faults.list shows the rules set")
                }
                engine.carryOut([], emissions: held, now: engine.now())
                return ["removed": .int(id)]
            },
            // A live pcap of the HAN: the answer carries the file header, then each frame comes as a
            // `capture` notification holding its pcap record, until the connection closes.
            ControlMethod(name: "han.capture") { params, call in
                let devices: Set<EUI64>?
                switch (try params.eui("device"), try params.string("premises")) {
                case (let id?, nil):
                    _ = try engine.requireDevice(id)
                    devices = [id]
                case (nil, let premises?):
                    guard let ids = engine.state.read({ $0.premises[premises] }) else { throw DomainError(.premisesNotFound, "no premises \(premises)") }
                    devices = Set(ids)
                case (nil, nil): devices = nil
                default: throw JSONRPCError.invalidParams("name a device or a premises, or neither for the whole HAN")
                }
                let clock = try params.string("clock") ?? "virtual"
                guard clock == "virtual" || clock == "logical" else {
                    throw JSONRPCError.invalidParams("clock must be virtual (frames stamped on the virtual clock) or logical (frame n at n ms)")
                }
                let formatName = try params.string("format") ?? "pcap"
                guard let format = CaptureFormat(rawValue: formatName) else {
                    throw JSONRPCError.invalidParams("format must be pcap or pcapng (got '\(formatName)')")
                }
                let connection = call.connection
                let id = engine.captures.add(devices: devices, logical: clock == "logical", format: format) { record in
                    connection.push(.notification(method: "capture", params: ["record": .string(Data(record).base64EncodedString())]))
                }
                connection.channel.closeFuture.whenComplete { _ in engine.captures.remove(id) }
                return [
                    "header": .string(Data(HANCaptureEncoder.fileHeader(format: format)).base64EncodedString()),
                    "linkType": .int(Int64(HANCaptureEncoder.linkType)), "clock": .string(clock), "format": .string(format.rawValue),
                ]
            },
            // The HAN links open now, with the IDs a link fault rule names.
            ControlMethod(name: "han.links") { params, _ in
                let device = try params.eui("device")
                if let device { _ = try engine.requireDevice(device) }
                let links = engine.links.all.filter { link in device.map { $0 == link.device } ?? true }
                return ["links": .array(links.map { link in
                    var object: [String: JSONValue] = [
                        "id": .int(Int64(link.id)), "device": .string(link.device.description), "attachedAt": .string(link.attachedAt.rfc3339),
                        "rig": link.rig.map { .string($0.description) } ?? .null,
                    ]
                    if let peer = link.peer { object["pid"] = .int(Int64(peer.pid)); object["uid"] = .int(Int64(peer.uid)) }
                    return .object(object)
                })]
            },
            ControlMethod(name: "faults.clear") { _, _ in
                let (count, held) = engine.faults.change { faults in (faults.count, faults.clear()) }
                engine.carryOut([], emissions: held, now: engine.now())
                return ["removed": .int(Int64(count))]
            },
        ]
    }

    /// A rule from `faults.add`'s params, or an error naming what is wrong.
    static func faultRule(_ params: Params, engine: Engine) throws -> FaultRule {
        let target: FaultTarget
        let device = try params.eui("device")
        let link = try params.int("link")
        switch (device, try params.string("premises"), params.object["all"]?.boolValue == true, link) {
        case (let id?, nil, false, nil):
            _ = try engine.requireDevice(id)
            target = .device(id)
        case (nil, let premises?, false, nil):
            guard engine.state.read({ $0.premises[premises] }) != nil else {
                throw DomainError(.premisesNotFound, "no premises \(premises)")
            }
            target = .premises(premises)
        case (nil, nil, true, nil): target = .all
        case (nil, nil, false, let link?):
            // Only a link open now: IDs are never reused, so a rule on a closed one could never act.
            guard let id = Int(exactly: link), engine.links.info(id) != nil else {
                throw DomainError(.invalidState, "no HAN link \(link) is open; han.links lists the links and their IDs")
            }
            target = .link(id)
        default: throw JSONRPCError.invalidParams("name one of device, premises, link (a HAN link ID from han.links), or all: true (the whole HAN)")
        }
        func probability() throws -> Double { try params.double("probability") ?? 1 }
        func millis(_ key: String) throws -> Int {
            guard let value = try params.double(key) else { return 0 }
            guard value.isFinite, value >= 0 else { throw JSONRPCError.invalidParams("\(key) must not be negative (got \(value))") }
            guard value <= 600_000 else { throw JSONRPCError.invalidParams("\(key) is at most 600000 ms") }
            return Int(value)
        }
        let kindName = try params.requiredString("kind")
        let kind: FaultKind
        switch kindName {
        case "delay":
            let distributionName = try params.string("distribution") ?? "uniform"
            guard let distribution = JitterDistribution(rawValue: distributionName) else {
                throw JSONRPCError.invalidParams("distribution must be uniform, normal or exponential (got '\(distributionName)')")
            }
            kind = .delay(fixedMillis: try millis("delayMs"), jitterMillis: try millis("jitterMs"), distribution: distribution)
        case "drop": kind = .drop(probability: try probability())
        case "duplicate": kind = .duplicate(probability: try probability())
        case "reorder": kind = .reorder(window: Int(clamping: try params.int("window") ?? 4))
        case "corrupt": kind = .corrupt(probability: try probability(), bits: Int(clamping: try params.int("bits") ?? 1))
        case "truncate": kind = .truncate(probability: try probability())
        case "mute": kind = .mute
        case "disconnect": kind = .disconnect
        case "refuseLinks": kind = .refuseLinks
        case "powerCycle": kind = .powerCycle
        case "hubUnreachable":
            guard let device else { throw JSONRPCError.invalidParams("hubUnreachable names a device (whose hub becomes unreachable)") }
            guard let hub = try engine.requireDevice(device).hub else {
                throw DomainError(.notJoined, "\(device) has not joined a Communications Hub, so there is no hub to make unreachable")
            }
            kind = .hubUnreachable(hub: hub)
        default:
            throw JSONRPCError.invalidParams("kind must be one of delay, drop, duplicate, reorder, corrupt, truncate, mute, disconnect, refuseLinks, powerCycle, hubUnreachable (got '\(kindName)')")
        }
        let directionName = try params.string("direction") ?? "both"
        guard let direction = FaultDirection(rawValue: directionName) else {
            throw JSONRPCError.invalidParams("direction must be to (the device), from (the device) or both (got '\(directionName)')")
        }
        let now = engine.now()
        var until = try params.time("until")
        if let seconds = try params.double("forSeconds") {
            guard seconds.isFinite, seconds > 0, seconds < 1e9 else { throw JSONRPCError.invalidParams("forSeconds must be positive") }
            until = Timestamp(unixMillis: now.unixMillis + Int64(seconds * 1000))
        }
        var trigger: FaultTrigger?
        if let after = params.object["after"], !after.isNull {
            let inner = try Params(after)
            guard let cluster = try hex16(inner, "cluster"), let command = try hex8(inner, "command") else {
                throw JSONRPCError.invalidParams("after needs cluster and command, e.g. {\"cluster\":\"0019\",\"command\":\"05\",\"count\":100}")
            }
            trigger = FaultTrigger(cluster: cluster, command: command, count: Int(clamping: try inner.int("count") ?? 1))
        }
        let afterFrames = try params.int("afterFrames") ?? 0
        let limit = try params.int("limit")
        let seed = try params.int("seed")
        return FaultRule(id: 0, kind: kind, target: target, direction: direction, cluster: try hex16(params, "cluster"),
                         command: try hex8(params, "command"), from: try params.time("from"), afterFrames: Int(clamping: afterFrames),
                         after: trigger, until: until, limit: limit.map { Int(clamping: $0) }, seed: seed.map { UInt64(bitPattern: $0) })
    }

    /// A cluster ID as 4 hex digits ("0019", "0x0019") or a number.
    static func hex16(_ params: Params, _ key: String) throws -> UInt16? {
        if let number = params.object[key]?.intValue { return try UInt16(exactly: number) ?? { throw JSONRPCError.invalidParams("\(key) must be 0...65535") }() }
        guard let text = try params.string(key) else { return nil }
        guard let value = UInt16(text.replacingOccurrences(of: "0x", with: ""), radix: 16) else {
            throw JSONRPCError.invalidParams("\(key) must be 4 hex digits, e.g. 0019 (got '\(text)')")
        }
        return value
    }

    /// A ZCL command ID as 2 hex digits ("05") or a number.
    static func hex8(_ params: Params, _ key: String) throws -> UInt8? {
        if let number = params.object[key]?.intValue { return try UInt8(exactly: number) ?? { throw JSONRPCError.invalidParams("\(key) must be 0...255") }() }
        guard let text = try params.string(key) else { return nil }
        guard let value = UInt8(text.replacingOccurrences(of: "0x", with: ""), radix: 16) else {
            throw JSONRPCError.invalidParams("\(key) must be 2 hex digits, e.g. 05 (got '\(text)')")
        }
        return value
    }

    static func ruleJSON(_ rule: FaultRule, _ counters: FaultCounters) -> JSONValue {
        var object: [String: JSONValue] = [
            "id": .int(Int64(rule.id)), "kind": .string(rule.kind.name), "direction": .string(rule.direction.rawValue),
            "afterFrames": .int(Int64(rule.afterFrames)),
            "counters": ["matched": .int(Int64(counters.matched)), "applied": .int(Int64(counters.applied)), "expired": .bool(counters.expired)],
        ]
        switch rule.target {
        case .device(let id): object["device"] = .string(id.description)
        case .premises(let id): object["premises"] = .string(id)
        case .all: object["all"] = true
        case .link(let id): object["link"] = .int(Int64(id))
        }
        switch rule.kind {
        case let .delay(fixed, jitter, distribution):
            object["delayMs"] = .int(Int64(fixed)); object["jitterMs"] = .int(Int64(jitter)); object["distribution"] = .string(distribution.rawValue)
        case .drop(let p), .duplicate(let p), .truncate(let p): object["probability"] = .double(p)
        case let .corrupt(p, bits): object["probability"] = .double(p); object["bits"] = .int(Int64(bits))
        case .reorder(let window): object["window"] = .int(Int64(window))
        case .hubUnreachable(let hub): object["hub"] = .string(hub.description)
        case .mute, .disconnect, .refuseLinks, .powerCycle: break
        }
        if let cluster = rule.cluster { object["cluster"] = .string(upperHex(cluster, width: 4)) }
        if let command = rule.command { object["command"] = .string(upperHex(command, width: 2)) }
        if let from = rule.from { object["from"] = .string(from.rfc3339) }
        if let until = rule.until { object["until"] = .string(until.rfc3339) }
        if let after = rule.after {
            object["after"] = ["cluster": .string(upperHex(after.cluster, width: 4)), "command": .string(upperHex(after.command, width: 2)), "count": .int(Int64(after.count))]
        }
        if let limit = rule.limit { object["limit"] = .int(Int64(limit)) }
        if let seed = rule.seed { object["seed"] = .int(Int64(bitPattern: seed)) }
        return .object(object)
    }
}
