#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SMETSCore

// Faults on demand: what a misbehaving HAN does to the frames between a device and its peers.
// A value type with no I/O and no clock of its own: the daemon hands it each frame (with the virtual
// time) and carries out the outcome (deliver, later, twice, never; close links; power cycle). Every
// random choice comes from a PRNG seeded from the seed and the rule's ID, so the same seed, rules and
// traffic in the same order give the same decisions, and adding a rule does not change another's.

/// SplitMix64: expands one 64-bit seed into well-mixed words (seeds xoshiro; Steele et al. 2014).
public struct SplitMix64: Sendable, Hashable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** (Blackman and Vigna): the rules' random numbers. Same seed, same sequence, on every platform.
public struct Xoshiro256: RandomNumberGenerator, Sendable, Hashable {
    private var s0, s1, s2, s3: UInt64

    public init(seed: UInt64) {
        var mixer = SplitMix64(seed: seed)
        s0 = mixer.next(); s1 = mixer.next(); s2 = mixer.next(); s3 = mixer.next()
    }

    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// Uniform in [0, 1), from the top 53 bits (exactly representable as a Double).
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform in 0..<bound (bound > 0), without modulo bias.
    public mutating func below(_ bound: Int) -> Int { Int(next(upperBound: UInt64(bound))) }
}

/// Which way a frame goes, seen from the device a rule is about.
public enum FaultDirection: String, Sendable, Hashable, CaseIterable {
    case toDevice = "to"
    case fromDevice = "from"
    case both
    func covers(_ direction: FaultDirection) -> Bool { self == .both || self == direction }
}

/// Whose frames a rule is about.
public enum FaultTarget: Sendable, Hashable {
    case device(EUI64)
    case premises(String)
    /// Every device of the HAN.
    case all
    /// One HAN link (a rig's connection to a device, by the ID the daemon gave it): only the frames
    /// on that link, either way; another link to the same device is left alone.
    case link(Int)
}

/// How a delay's jitter is drawn.
public enum JitterDistribution: String, Sendable, Hashable, CaseIterable {
    /// fixed + uniform in [-jitter, +jitter]
    case uniform
    /// fixed + normal with standard deviation jitter (cut at 6 standard deviations)
    case normal
    /// fixed + exponential with mean jitter
    case exponential
}

/// What a rule does to the frames it matches.
public enum FaultKind: Sendable, Hashable {
    /// Late by fixed + jitter milliseconds (never less than 0).
    case delay(fixedMillis: Int, jitterMillis: Int, distribution: JitterDistribution)
    /// Lost with this probability (the rule's `limit` makes "the next N frames").
    case drop(probability: Double)
    /// Sent twice with this probability.
    case duplicate(probability: Double)
    /// Held until `window` frames are held, then released in a shuffled order.
    case reorder(window: Int)
    /// `bits` bits flipped inside the ZCL payload (after the ZCL header) with this probability; the
    /// DATA frame around it stays valid.
    case corrupt(probability: Double, bits: Int)
    /// The ZCL payload cut short (the ZCL header stays) with this probability.
    case truncate(probability: Double)
    /// The device neither hears nor says anything; its links stay open.
    case mute
    /// The device's links close on the first matching frame once the window opens (the frame is lost).
    case disconnect
    /// New links to the device are refused while the rule is in force (ERROR 6).
    case refuseLinks
    /// Frames between the device and `hub` (its OTA server, its Change of Tenancy sender) never arrive.
    case hubUnreachable(hub: EUI64)
    /// The device reboots on the first matching frame once the window opens (the frame is lost).
    case powerCycle

    public var name: String {
        switch self {
        case .delay: "delay"
        case .drop: "drop"
        case .duplicate: "duplicate"
        case .reorder: "reorder"
        case .corrupt: "corrupt"
        case .truncate: "truncate"
        case .mute: "mute"
        case .disconnect: "disconnect"
        case .refuseLinks: "refuseLinks"
        case .hubUnreachable: "hubUnreachable"
        case .powerCycle: "powerCycle"
        }
    }

    /// Why the kind's parameters are unusable, for a clear refusal; nil when they are fine.
    public var problem: String? {
        func probability(_ p: Double) -> String? {
            p.isFinite && p >= 0 && p <= 1 ? nil : "probability must be between 0 and 1 (got \(p))"
        }
        switch self {
        case let .delay(fixed, jitter, _):
            if fixed < 0 { return "delay must not be negative (got \(fixed) ms)" }
            if jitter < 0 { return "jitter must not be negative (got \(jitter) ms)" }
            if fixed > 600_000 || jitter > 600_000 { return "delay and jitter are at most 600000 ms" }
            return nil
        case .drop(let p), .duplicate(let p), .truncate(let p): return probability(p)
        case let .corrupt(p, bits): return probability(p) ?? (bits < 1 || bits > 64 ? "bits must be 1...64 (got \(bits))" : nil)
        case .reorder(let window): return window < 2 || window > 64 ? "window must be 2...64 frames (got \(window))" : nil
        case .mute, .disconnect, .refuseLinks, .hubUnreachable, .powerCycle: return nil
        }
    }
}

/// "After an event": the rule opens once this many frames of that cluster and command have passed
/// (e.g. the 100th Image Block Response: cluster 0x0019, command 0x05, count 100).
public struct FaultTrigger: Sendable, Hashable {
    public var cluster: UInt16
    public var command: UInt8
    public var count: Int
    public init(cluster: UInt16, command: UInt8, count: Int) { self.cluster = cluster; self.command = command; self.count = count }
}

/// A rule: what it does, to whose frames, which frames, and when.
public struct FaultRule: Sendable, Hashable {
    public var id: Int
    public var kind: FaultKind
    public var target: FaultTarget
    public var direction: FaultDirection
    /// Only frames of this cluster (nil: any).
    public var cluster: UInt16?
    /// Only frames with this ZCL command ID (nil: any).
    public var command: UInt8?
    /// Opens at this virtual time.
    public var from: Timestamp?
    /// Opens after this many matching frames have passed untouched.
    public var afterFrames: Int
    /// Opens after this event.
    public var after: FaultTrigger?
    /// Expires at this virtual time.
    public var until: Timestamp?
    /// Expires after doing its fault this many times.
    public var limit: Int?
    /// Its own random stream's seed; nil: drawn from the model's seed and the rule's ID.
    public var seed: UInt64?

    public init(id: Int, kind: FaultKind, target: FaultTarget, direction: FaultDirection = .both, cluster: UInt16? = nil,
                command: UInt8? = nil, from: Timestamp? = nil, afterFrames: Int = 0, after: FaultTrigger? = nil,
                until: Timestamp? = nil, limit: Int? = nil, seed: UInt64? = nil) {
        self.id = id; self.kind = kind; self.target = target; self.direction = direction; self.cluster = cluster
        self.command = command; self.from = from; self.afterFrames = afterFrames; self.after = after; self.until = until
        self.limit = limit; self.seed = seed
    }

    var isLinkRule: Bool { if case .link = target { true } else { false } }

    /// Why the rule is unusable; nil when it is fine.
    public var problem: String? {
        if let problem = kind.problem { return problem }
        if afterFrames < 0 { return "afterFrames must not be negative (got \(afterFrames))" }
        if let limit, limit < 1 { return "limit must be at least 1 (got \(limit))" }
        if let after, after.count < 1 { return "after.count must be at least 1 (got \(after.count))" }
        if let from, let until, until <= from { return "until must be later than from" }
        if case .link = target {
            // These act on the device (its radio, its hub, its reboot), never on one rig's link.
            switch kind {
            case .refuseLinks: return "refuseLinks refuses new links, which have no ID yet: name the device instead"
            case .hubUnreachable: return "hubUnreachable is about a device and its hub, whose frames travel on no rig's link: name the device"
            case .powerCycle: return "powerCycle reboots the device, not a link: name the device (disconnect closes one link)"
            default: break
            }
        }
        return nil
    }
}

/// What a rule has done so far.
public struct FaultCounters: Sendable, Hashable {
    /// Frames of its device(s), direction, cluster and command it saw.
    public var matched = 0
    /// Times it did its fault.
    public var applied = 0
    /// Expired (by `until` or `limit`): it does nothing more.
    public var expired = false

    public init() {}
}

/// A frame on its way, as the fault model sees it.
public struct FaultFrame: Sendable, Hashable {
    /// The emulated device the frame is to or from.
    public var device: EUI64
    public var premises: String
    /// The other end.
    public var peer: EUI64
    /// `.toDevice` or `.fromDevice`.
    public var direction: FaultDirection
    public var cluster: UInt16
    /// The ZCL frame (header and payload).
    public var zcl: [UInt8]
    /// The HAN link the frame travels on (a rig's request on it, or an answer on its way to it);
    /// nil for a frame between emulated devices, or one a device sends before it reaches any link.
    public var link: Int?

    public init(device: EUI64, premises: String, peer: EUI64, direction: FaultDirection, cluster: UInt16, zcl: [UInt8], link: Int? = nil) {
        self.device = device; self.premises = premises; self.peer = peer; self.direction = direction
        self.cluster = cluster; self.zcl = zcl; self.link = link
    }

    /// The ZCL command ID, when the header can be read.
    var command: UInt8? {
        guard let first = zcl.first else { return nil }
        let index = first & 0x04 != 0 ? 4 : 2
        return index < zcl.count ? zcl[index] : nil
    }

    /// Where the ZCL payload starts (after frame control, manufacturer code, sequence number, command).
    var payloadStart: Int { (zcl.first ?? 0) & 0x04 != 0 ? 5 : 3 }
}

/// One frame to send, and when.
public struct FaultEmission<Payload: Sendable>: Sendable {
    public var payload: Payload
    public var frame: FaultFrame
    public var delayMillis: Int
}

/// A fault done to a frame: for `fault.applied` and the log.
public struct FaultApplication: Sendable, Hashable {
    public var ruleID: Int
    public var kind: String
    public var detail: String
    public var frame: FaultFrame

    public init(ruleID: Int, kind: String, detail: String, frame: FaultFrame) {
        self.ruleID = ruleID; self.kind = kind; self.detail = detail; self.frame = frame
    }
}

/// What to do with a frame (and with frames a reorder held before it).
public struct FaultOutcome<Payload: Sendable>: Sendable {
    /// Frames to send, each after its delay (none when the frame was dropped or is held).
    public var emissions: [FaultEmission<Payload>] = []
    public var applied: [FaultApplication] = []
    /// Close the device's links.
    public var disconnect = false
    /// Close these links only (a disconnect rule on one link).
    public var closeLinks: [Int] = []
    /// Reboot the device.
    public var powerCycle = false
}

/// The rules in force and their state. `Payload` is whatever the daemon needs to send a frame later
/// (a reorder holds frames and releases them with a later one).
public struct HANFaults<Payload: Sendable>: Sendable {
    struct Entry: Sendable {
        var rule: FaultRule
        var counters = FaultCounters()
        var random: Xoshiro256
        /// Frames of the trigger seen, until it fires.
        var triggerSeen = 0
        /// Matching frames let through for `afterFrames`.
        var passed = 0
        var held: [(payload: Payload, frame: FaultFrame)] = []
    }

    public let seed: UInt64
    private(set) var entries: [Entry] = []
    private var nextID = 1

    public init(seed: UInt64) { self.seed = seed }

    public var isEmpty: Bool { entries.isEmpty }
    /// Whether a rule names one link: only then does a frame a device sends pass each link's rules
    /// on its way to that link (``processOnLink(_:payload:now:)``).
    public var hasLinkRules: Bool { entries.contains { if case .link = $0.rule.target { true } else { false } } }
    public var count: Int { entries.count }

    /// The rules in ID order, with their counters.
    public var rules: [(rule: FaultRule, counters: FaultCounters)] { entries.map { ($0.rule, $0.counters) } }

    /// Adds a rule (its `id` is replaced by the next free one) and returns it, or why it is refused.
    public mutating func add(_ rule: FaultRule) -> Result<FaultRule, FaultRuleError> {
        if let problem = rule.problem { return .failure(FaultRuleError(message: problem)) }
        var rule = rule
        rule.id = nextID
        nextID += 1
        // Each rule draws from its own stream: another rule's traffic never shifts its choices.
        let stream = rule.seed.map { $0 ^ 0x5EED_FA17_0000_0001 } ?? seed ^ (UInt64(rule.id) &* 0xD1B5_4A32_D192_ED03)
        entries.append(Entry(rule: rule, random: Xoshiro256(seed: stream)))
        return .success(rule)
    }

    /// Removes a rule; the frames a reorder held go out now, in the order they came.
    public mutating func remove(_ id: Int) -> [FaultEmission<Payload>]? {
        guard let index = entries.firstIndex(where: { $0.rule.id == id }) else { return nil }
        let entry = entries.remove(at: index)
        return entry.held.map { FaultEmission(payload: $0.payload, frame: $0.frame, delayMillis: 0) }
    }

    /// Removes every rule; held frames go out.
    public mutating func clear() -> [FaultEmission<Payload>] {
        let held = entries.flatMap { $0.held.map { FaultEmission(payload: $0.payload, frame: $0.frame, delayMillis: 0) } }
        entries.removeAll()
        return held
    }

    /// Whether a new link to `device` is refused now.
    public mutating func refusesLink(device: EUI64, premises: String, now: Timestamp) -> Int? {
        for index in entries.indices where entries[index].rule.kind == .refuseLinks {
            expire(index, now: now)
            let entry = entries[index]
            guard !entry.counters.expired, Self.targets(entry.rule.target, device: device, premises: premises),
                  entry.rule.from.map({ now >= $0 }) ?? true else { continue }
            entries[index].counters.applied += 1
            if let limit = entry.rule.limit, entries[index].counters.applied >= limit { entries[index].counters.expired = true }
            return entry.rule.id
        }
        return nil
    }

    /// A frame's fate: every rule that matches it, in ID order. A frame with a `link` (a rig's
    /// request) meets that link's rules here too; a frame a device sends has none yet: it meets the
    /// link rules on each link's leg (``processOnLink(_:payload:now:)``).
    public mutating func process(_ frame: FaultFrame, payload: Payload, now: Timestamp) -> FaultOutcome<Payload> {
        process(frame, payload: payload, now: now, linkLeg: false)
    }

    /// A frame a device sent, on its way to one link (`frame.link`), after ``process(_:payload:now:)``
    /// let it out of the device: only that link's rules act, so a rule on link 3 leaves link 4 alone
    /// and the device's own rules are not applied twice.
    public mutating func processOnLink(_ frame: FaultFrame, payload: Payload, now: Timestamp) -> FaultOutcome<Payload> {
        process(frame, payload: payload, now: now, linkLeg: true)
    }

    private mutating func process(_ frame: FaultFrame, payload: Payload, now: Timestamp, linkLeg: Bool) -> FaultOutcome<Payload> {
        var outcome = FaultOutcome<Payload>()
        var frame = frame
        var delay = 0
        var copies = 1
        for index in entries.indices {
            if linkLeg, !entries[index].rule.isLinkRule { continue }
            guard matches(index, frame, now: now) else { continue }
            var entry = entries[index]
            func applied(_ detail: String) {
                entry.counters.applied += 1
                outcome.applied.append(FaultApplication(ruleID: entry.rule.id, kind: entry.rule.kind.name, detail: detail, frame: frame))
                if let limit = entry.rule.limit, entry.counters.applied >= limit { entry.counters.expired = true }
            }
            defer { entries[index] = entry }
            switch entry.rule.kind {
            case let .delay(fixed, jitter, distribution):
                let millis = max(0, fixed + Self.jitter(jitter, distribution, &entry.random))
                delay += millis
                applied("\(millis) ms")
            case .drop(let p):
                if entry.random.unit() < p { applied("dropped"); entries[index] = entry; return outcome }
            case .mute:
                applied("muted"); entries[index] = entry; return outcome
            case .hubUnreachable(let hub):
                guard frame.peer == hub else { continue }
                applied("hub unreachable"); entries[index] = entry; return outcome
            case .duplicate(let p):
                if entry.random.unit() < p { copies += 1; applied("sent twice") }
            case let .corrupt(p, bits):
                let start = frame.payloadStart
                guard frame.zcl.count > start, entry.random.unit() < p else { continue }
                var flipped: [Int] = []
                for _ in 0..<bits {
                    let bit = entry.random.below((frame.zcl.count - start) * 8)
                    frame.zcl[start + bit / 8] ^= 1 << UInt8(bit % 8)
                    flipped.append(bit)
                }
                applied("flipped payload bits \(flipped.map(String.init).joined(separator: ","))")
            case .truncate(let p):
                let start = frame.payloadStart
                guard frame.zcl.count > start, entry.random.unit() < p else { continue }
                let keep = start + entry.random.below(frame.zcl.count - start)
                let before = frame.zcl.count
                frame.zcl.removeLast(before - keep)
                applied("cut from \(before) to \(keep) bytes")
            case .disconnect:
                if case .link(let link) = entry.rule.target {
                    applied("link \(link) closed"); outcome.closeLinks.append(link)
                } else {
                    applied("links closed"); outcome.disconnect = true
                }
                entries[index] = entry; return outcome
            case .powerCycle:
                applied("power cycle"); outcome.powerCycle = true; entries[index] = entry; return outcome
            case .refuseLinks:
                continue
            case .reorder(let window):
                entry.held.append((payload, frame))
                guard entry.held.count >= window else { applied("held"); entries[index] = entry; return outcome }
                var released = entry.held
                entry.held.removeAll()
                released.shuffle(using: &entry.random)
                applied("released \(released.count) frames shuffled")
                entries[index] = entry
                outcome.emissions = released.map { FaultEmission(payload: $0.payload, frame: $0.frame, delayMillis: delay) }
                return outcome
            }
        }
        for _ in 0..<copies { outcome.emissions.append(FaultEmission(payload: payload, frame: frame, delayMillis: delay)) }
        return outcome
    }

    /// Whether rule `index` acts on `frame` now; counts what it sees and whether its window opened.
    private mutating func matches(_ index: Int, _ frame: FaultFrame, now: Timestamp) -> Bool {
        expire(index, now: now)
        let rule = entries[index].rule
        guard !entries[index].counters.expired, rule.kind != .refuseLinks,
              Self.targets(rule.target, device: frame.device, premises: frame.premises, link: frame.link) else { return false }
        // The trigger counts every frame of the device(s), whatever the rule's own filters; the
        // triggering frame itself passes ("after the 100th" acts from the 101st frame on).
        let armed = rule.after.map { entries[index].triggerSeen >= $0.count } ?? true
        if let trigger = rule.after, !armed, frame.cluster == trigger.cluster, frame.command == trigger.command {
            entries[index].triggerSeen += 1
        }
        guard rule.direction.covers(frame.direction), rule.cluster.map({ $0 == frame.cluster }) ?? true,
              rule.command.map({ $0 == frame.command }) ?? true else { return false }
        entries[index].counters.matched += 1
        guard armed, rule.from.map({ now >= $0 }) ?? true else { return false }
        // afterFrames counts matching frames once time and trigger allow it; they pass untouched.
        if entries[index].passed < rule.afterFrames {
            entries[index].passed += 1
            return false
        }
        return true
    }

    private mutating func expire(_ index: Int, now: Timestamp) {
        if let until = entries[index].rule.until, now >= until { entries[index].counters.expired = true }
    }

    static func targets(_ target: FaultTarget, device: EUI64, premises: String, link: Int? = nil) -> Bool {
        switch target {
        case .all: true
        case .device(let id): id == device
        case .premises(let id): id == premises
        case .link(let id): id == link
        }
    }

    static func jitter(_ jitter: Int, _ distribution: JitterDistribution, _ random: inout Xoshiro256) -> Int {
        guard jitter > 0 else { return 0 }
        let value: Double = switch distribution {
        case .uniform: (random.unit() * 2 - 1) * Double(jitter)
        case .normal:
            // Irwin-Hall: twelve uniforms less 6 is close to a standard normal, within 6 sigma, with no libm.
            ((0..<12).reduce(0.0) { sum, _ in sum + random.unit() } - 6) * Double(jitter)
        case .exponential: -log(1 - random.unit()) * Double(jitter)
        }
        return Int(value.rounded())
    }
}

/// A rule refused, and why.
public struct FaultRuleError: Error, Sendable, Hashable {
    public var message: String
    public init(message: String) { self.message = message }
}
