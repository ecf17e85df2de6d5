import SMETSCore
import Testing
@testable import SMETSDevices

@Suite("HAN faults")
struct HANFaultsTests {
    static let device = EUI64("00-DB-12-34-56-78-00-05")!
    static let other = EUI64("00-DB-12-34-56-78-00-06")!
    static let hub = EUI64("00-DB-12-34-56-78-00-01")!
    static let rig = EUI64("00-DB-12-34-56-78-90-A1")!
    static let now = Timestamp(unixMillis: 1_800_000_000_000)

    /// A frame to or from `device`; payload bytes 0...n.
    static func frame(_ direction: FaultDirection = .toDevice, device: EUI64 = device, peer: EUI64 = rig, cluster: UInt16 = 0x0000,
                      command: UInt8 = 0x00, payload: Int = 8) -> FaultFrame {
        FaultFrame(device: device, premises: device == other ? "P0002" : "P0001", peer: peer, direction: direction, cluster: cluster,
                   zcl: [0x00, 0x01, command] + (0..<payload).map { UInt8($0) })
    }

    static func faults(_ rules: FaultRule..., seed: UInt64 = 42) -> HANFaults<Int> {
        var faults = HANFaults<Int>(seed: seed)
        for rule in rules { _ = try! faults.add(rule).get() }
        return faults
    }

    static func rule(_ kind: FaultKind, target: FaultTarget = .device(device), direction: FaultDirection = .both,
                     cluster: UInt16? = nil, command: UInt8? = nil, from: Timestamp? = nil, afterFrames: Int = 0,
                     after: FaultTrigger? = nil, until: Timestamp? = nil, limit: Int? = nil) -> FaultRule {
        FaultRule(id: 0, kind: kind, target: target, direction: direction, cluster: cluster, command: command, from: from,
                  afterFrames: afterFrames, after: after, until: until, limit: limit)
    }

    /// How many emissions each of `count` frames gave.
    static func fates(_ faults: inout HANFaults<Int>, _ count: Int, _ make: (Int) -> FaultFrame = { _ in frame() }) -> [Int] {
        (0..<count).map { faults.process(make($0), payload: $0, now: now).emissions.count }
    }

    @Test("xoshiro256** with SplitMix64 seeding gives the same stream for the same seed, another for another seed")
    func prngIsSeeded() {
        var a = Xoshiro256(seed: 1), b = Xoshiro256(seed: 1), c = Xoshiro256(seed: 2)
        let first = (0..<8).map { _ in a.next() }
        #expect(first == (0..<8).map { _ in b.next() })
        #expect(first != (0..<8).map { _ in c.next() })
        // SplitMix64's published first output for seed 0.
        var mixer = SplitMix64(seed: 0)
        #expect(mixer.next() == 0xE220_A839_7B1D_CDAF)
        var unit = Xoshiro256(seed: 7)
        #expect((0..<1000).allSatisfy { _ in (0..<1).contains(unit.unit()) })
    }

    @Test("no rule: every frame goes out once, unchanged, at once")
    func noRule() {
        var faults = HANFaults<Int>(seed: 1)
        let outcome = faults.process(Self.frame(), payload: 7, now: Self.now)
        #expect(outcome.emissions.count == 1)
        #expect(outcome.emissions[0].frame == Self.frame() && outcome.emissions[0].delayMillis == 0 && outcome.emissions[0].payload == 7)
        #expect(outcome.applied.isEmpty && !outcome.disconnect && !outcome.powerCycle)
    }

    @Test("drop: about the probability asked, and the same frames for the same seed")
    func dropProbability() {
        var a = Self.faults(Self.rule(.drop(probability: 0.25))), b = Self.faults(Self.rule(.drop(probability: 0.25)))
        var c = Self.faults(Self.rule(.drop(probability: 0.25)), seed: 43)
        let fatesA = Self.fates(&a, 2000), fatesB = Self.fates(&b, 2000), fatesC = Self.fates(&c, 2000)
        #expect(fatesA == fatesB)
        #expect(fatesA != fatesC)
        let dropped = fatesA.filter { $0 == 0 }.count
        #expect((400...600).contains(dropped))
        #expect(a.rules[0].counters.applied == dropped && a.rules[0].counters.matched == 2000)
    }

    @Test("drop with a limit is 'the next N frames', then the rule expires")
    func dropNext() {
        var faults = Self.faults(Self.rule(.drop(probability: 1), limit: 3))
        #expect(Self.fates(&faults, 5) == [0, 0, 0, 1, 1])
        #expect(faults.rules[0].counters.expired && faults.rules[0].counters.applied == 3)
    }

    @Test("delay: fixed plus jitter within the uniform bounds; normal and exponential never below zero")
    func delay() {
        var faults = Self.faults(Self.rule(.delay(fixedMillis: 5, jitterMillis: 5, distribution: .uniform)))
        let delays = (0..<500).map { faults.process(Self.frame(), payload: $0, now: Self.now).emissions[0].delayMillis }
        #expect(delays.allSatisfy { (0...10).contains($0) })
        #expect(Set(delays).count > 5)
        for distribution in [JitterDistribution.normal, .exponential] {
            var other = Self.faults(Self.rule(.delay(fixedMillis: 2, jitterMillis: 10, distribution: distribution)))
            let delays = (0..<500).map { other.process(Self.frame(), payload: $0, now: Self.now).emissions[0].delayMillis }
            #expect(delays.allSatisfy { $0 >= 0 })
            #expect(Set(delays).count > 5)
        }
        var fixed = Self.faults(Self.rule(.delay(fixedMillis: 30, jitterMillis: 0, distribution: .uniform)))
        #expect(fixed.process(Self.frame(), payload: 0, now: Self.now).emissions[0].delayMillis == 30)
    }

    @Test("duplicate: the frame twice, identical")
    func duplicate() {
        var faults = Self.faults(Self.rule(.duplicate(probability: 1)))
        let outcome = faults.process(Self.frame(), payload: 1, now: Self.now)
        #expect(outcome.emissions.count == 2 && outcome.emissions[0].frame == outcome.emissions[1].frame)
        #expect(outcome.applied.map(\.kind) == ["duplicate"])
    }

    @Test("reorder: frames held until the window is full, then all released in a seeded shuffle; removal releases the rest")
    func reorder() {
        var faults = Self.faults(Self.rule(.reorder(window: 4)))
        var released: [Int] = []
        for index in 0..<8 {
            let outcome = faults.process(Self.frame(), payload: index, now: Self.now)
            #expect(outcome.emissions.count == (index % 4 == 3 ? 4 : 0))
            released += outcome.emissions.map(\.payload)
        }
        #expect(released.sorted() == Array(0..<8))
        #expect(released != Array(0..<8))
        _ = faults.process(Self.frame(), payload: 8, now: Self.now)
        #expect(faults.remove(1)?.map(\.payload) == [8])
        #expect(faults.isEmpty)
    }

    @Test("corrupt flips bits inside the ZCL payload only; truncate keeps the ZCL header")
    func corruptAndTruncate() {
        var faults = Self.faults(Self.rule(.corrupt(probability: 1, bits: 3)))
        for index in 0..<50 {
            let original = Self.frame()
            let sent = faults.process(original, payload: index, now: Self.now).emissions[0].frame
            #expect(Array(sent.zcl.prefix(3)) == Array(original.zcl.prefix(3)))
            #expect(sent.zcl.count == original.zcl.count)
            let flips = zip(sent.zcl, original.zcl).map { ($0 ^ $1).nonzeroBitCount }.reduce(0, +)
            #expect((1...3).contains(flips) && flips % 2 == 1)  // three flips, two may cancel
        }
        // No payload: nothing to corrupt, so nothing is done.
        let bare = faults.process(Self.frame(payload: 0), payload: 0, now: Self.now)
        #expect(bare.emissions[0].frame == Self.frame(payload: 0) && bare.applied.isEmpty)

        var cut = Self.faults(Self.rule(.truncate(probability: 1)))
        for index in 0..<50 {
            let sent = cut.process(Self.frame(), payload: index, now: Self.now).emissions[0].frame
            #expect((3..<11).contains(sent.zcl.count))
            #expect(sent.zcl == Array(Self.frame().zcl.prefix(sent.zcl.count)))
        }
    }

    @Test("mute: nothing either way; disconnect and power cycle fire once after N frames")
    func muteDisconnectPowerCycle() {
        var muted = Self.faults(Self.rule(.mute))
        #expect(Self.fates(&muted, 4) { $0 % 2 == 0 ? Self.frame(.toDevice) : Self.frame(.fromDevice) } == [0, 0, 0, 0])
        #expect(Self.fates(&muted, 1) { _ in Self.frame(device: Self.other) } == [1])

        var disconnect = Self.faults(Self.rule(.disconnect, afterFrames: 2, limit: 1))
        let outcomes = (0..<4).map { disconnect.process(Self.frame(), payload: $0, now: Self.now) }
        #expect(outcomes.map(\.disconnect) == [false, false, true, false])
        #expect(outcomes.map(\.emissions.count) == [1, 1, 0, 1])

        var reboot = Self.faults(Self.rule(.powerCycle, limit: 1))
        #expect(reboot.process(Self.frame(), payload: 0, now: Self.now).powerCycle)
        #expect(!reboot.process(Self.frame(), payload: 1, now: Self.now).powerCycle)
    }

    @Test("hub unreachable: frames with the hub are lost both ways, with anyone else they pass")
    func hubUnreachable() {
        var faults = Self.faults(Self.rule(.hubUnreachable(hub: Self.hub)))
        #expect(Self.fates(&faults, 2) { $0 == 0 ? Self.frame(.toDevice, peer: Self.hub) : Self.frame(.fromDevice, peer: Self.hub) } == [0, 0])
        #expect(Self.fates(&faults, 1) { _ in Self.frame(peer: Self.rig) } == [1])
    }

    @Test("refuse links: while in force, for the device it names")
    func refuseLinks() {
        let later = Timestamp(unixMillis: Self.now.unixMillis + 60_000)
        var faults = Self.faults(Self.rule(.refuseLinks, until: later))
        #expect(faults.refusesLink(device: Self.device, premises: "P0001", now: Self.now) == 1)
        #expect(faults.refusesLink(device: Self.other, premises: "P0002", now: Self.now) == nil)
        #expect(faults.refusesLink(device: Self.device, premises: "P0001", now: later) == nil)
        // It never touches frames.
        #expect(Self.fates(&faults, 1) == [1])
    }

    @Test("limits: direction, cluster, command, target; others untouched")
    func limits() {
        var byCluster = Self.faults(Self.rule(.drop(probability: 1), cluster: 0x0019))
        #expect(Self.fates(&byCluster, 2) { Self.frame(cluster: $0 == 0 ? 0x0019 : 0x0703) } == [0, 1])
        var byDirection = Self.faults(Self.rule(.drop(probability: 1), direction: .fromDevice))
        #expect(Self.fates(&byDirection, 2) { Self.frame($0 == 0 ? .fromDevice : .toDevice) } == [0, 1])
        var byCommand = Self.faults(Self.rule(.drop(probability: 1), command: 0x05))
        #expect(Self.fates(&byCommand, 2) { Self.frame(command: $0 == 0 ? 0x05 : 0x03) } == [0, 1])
        var byPremises = Self.faults(Self.rule(.drop(probability: 1), target: .premises("P0002")))
        #expect(Self.fates(&byPremises, 2) { Self.frame(device: $0 == 0 ? Self.other : Self.device) } == [0, 1])
        var everyone = Self.faults(Self.rule(.drop(probability: 1), target: .all))
        #expect(Self.fates(&everyone, 2) { Self.frame(device: $0 == 0 ? Self.other : Self.device) } == [0, 0])
    }

    @Test("windows: from a virtual time, until a virtual time, after the Nth frame of an event")
    func windows() {
        let later = Timestamp(unixMillis: Self.now.unixMillis + 1000)
        var fromLater = Self.faults(Self.rule(.drop(probability: 1), from: later))
        #expect(fromLater.process(Self.frame(), payload: 0, now: Self.now).emissions.count == 1)
        #expect(fromLater.process(Self.frame(), payload: 1, now: later).emissions.isEmpty)

        var untilLater = Self.faults(Self.rule(.drop(probability: 1), until: later))
        #expect(untilLater.process(Self.frame(), payload: 0, now: Self.now).emissions.isEmpty)
        #expect(untilLater.process(Self.frame(), payload: 1, now: later).emissions.count == 1)
        #expect(untilLater.rules[0].counters.expired)

        // After the 3rd Image Block Response: every frame from then on, of any cluster.
        var afterEvent = Self.faults(Self.rule(.drop(probability: 1), after: FaultTrigger(cluster: 0x0019, command: 0x05, count: 3)))
        let traffic: [(UInt16, UInt8)] = [(0x0019, 0x05), (0x0000, 0x00), (0x0019, 0x05), (0x0019, 0x05), (0x0000, 0x00), (0x0019, 0x05)]
        #expect(Self.fates(&afterEvent, traffic.count) { Self.frame(cluster: traffic[$0].0, command: traffic[$0].1) } == [1, 1, 1, 1, 0, 0])
    }

    @Test("rules compose in ID order: corrupt then duplicate sends the corrupted frame twice; a drop ends it")
    func compose() {
        var faults = Self.faults(Self.rule(.corrupt(probability: 1, bits: 1)), Self.rule(.duplicate(probability: 1)),
                                 Self.rule(.delay(fixedMillis: 7, jitterMillis: 0, distribution: .uniform)))
        let outcome = faults.process(Self.frame(), payload: 0, now: Self.now)
        #expect(outcome.emissions.count == 2 && outcome.emissions[0].frame == outcome.emissions[1].frame)
        #expect(outcome.emissions[0].frame != Self.frame() && outcome.emissions.allSatisfy { $0.delayMillis == 7 })
        #expect(outcome.applied.map(\.ruleID) == [1, 2, 3])
        var dropFirst = Self.faults(Self.rule(.drop(probability: 1)), Self.rule(.duplicate(probability: 1)))
        let dropped = dropFirst.process(Self.frame(), payload: 0, now: Self.now)
        #expect(dropped.emissions.isEmpty && dropped.applied.map(\.ruleID) == [1])
        #expect(dropFirst.rules[1].counters.matched == 0)
    }

    @Test("same seed, rules and traffic: the same decisions; a rule added for another cluster does not shift them")
    func determinism() {
        func run(seed: UInt64, extra: Bool) -> [String] {
            var faults = HANFaults<Int>(seed: seed)
            _ = faults.add(Self.rule(.drop(probability: 0.3), cluster: 0x0019))
            _ = faults.add(Self.rule(.corrupt(probability: 0.5, bits: 2), cluster: 0x0019))
            _ = faults.add(Self.rule(.delay(fixedMillis: 5, jitterMillis: 5, distribution: .normal), cluster: 0x0019))
            if extra { _ = faults.add(Self.rule(.drop(probability: 0.5), cluster: 0x0703)) }
            return (0..<300).map { index in
                let outcome = faults.process(Self.frame(cluster: 0x0019, command: UInt8(index % 8)), payload: index, now: Self.now)
                return outcome.emissions.map { "\($0.frame.zcl)@\($0.delayMillis)" }.joined(separator: "|")
            }
        }
        #expect(run(seed: 9, extra: false) == run(seed: 9, extra: false))
        #expect(run(seed: 9, extra: false) == run(seed: 9, extra: true))
        #expect(run(seed: 9, extra: false) != run(seed: 10, extra: false))
    }

    @Test("malformed rules are refused with the reason; IDs count up; clear empties")
    func validation() {
        var faults = HANFaults<Int>(seed: 0)
        let refusals: [(FaultKind, String)] = [
            (.drop(probability: 1.5), "probability must be between 0 and 1"), (.drop(probability: -0.1), "probability"),
            (.duplicate(probability: .nan), "probability"), (.delay(fixedMillis: -1, jitterMillis: 0, distribution: .uniform), "delay must not be negative"),
            (.delay(fixedMillis: 1, jitterMillis: -5, distribution: .normal), "jitter must not be negative"),
            (.reorder(window: 1), "window"), (.corrupt(probability: 1, bits: 0), "bits"),
        ]
        for (kind, reason) in refusals {
            guard case .failure(let error) = faults.add(Self.rule(kind)) else { Issue.record("\(kind) accepted"); continue }
            #expect(error.message.contains(reason))
        }
        guard case .failure(let limit) = faults.add(Self.rule(.mute, limit: 0)) else { Issue.record("limit 0 accepted"); return }
        #expect(limit.message.contains("limit"))
        #expect(faults.isEmpty)
        #expect((try? faults.add(Self.rule(.mute)).get().id) == 1)
        #expect((try? faults.add(Self.rule(.mute)).get().id) == 2)
        #expect(faults.remove(5) == nil)
        _ = faults.clear()
        #expect(faults.isEmpty)
        #expect((try? faults.add(Self.rule(.mute)).get().id) == 3)
    }

    @Test("a rule on one link acts on that link's frames, either way, and leaves another link to the same device alone")
    func linkRule() {
        func onLink(_ link: Int?, _ direction: FaultDirection = .toDevice) -> FaultFrame {
            var frame = Self.frame(direction)
            frame.link = link
            return frame
        }
        var faults = Self.faults(Self.rule(.drop(probability: 1), target: .link(3)))
        #expect(faults.hasLinkRules)
        // A rig's request on link 3 is dropped; the same request on link 4 reaches the device.
        #expect(faults.process(onLink(3), payload: 0, now: Self.now).emissions.isEmpty)
        #expect(faults.process(onLink(4), payload: 0, now: Self.now).emissions.count == 1)
        // A frame the device sends meets no link rule leaving the device (it has no link yet)...
        #expect(faults.process(onLink(nil, .fromDevice), payload: 0, now: Self.now).emissions.count == 1)
        // ...then each link's leg: lost on link 3, delivered on link 4.
        #expect(faults.processOnLink(onLink(3, .fromDevice), payload: 0, now: Self.now).emissions.isEmpty)
        #expect(faults.processOnLink(onLink(4, .fromDevice), payload: 0, now: Self.now).emissions.count == 1)
        #expect(faults.rules[0].counters.matched == 2 && faults.rules[0].counters.applied == 2)
        // A frame between two emulated devices travels on no rig's link.
        #expect(faults.process(Self.frame(peer: Self.hub), payload: 0, now: Self.now).emissions.count == 1)
    }

    @Test("a link's leg meets only link rules: the device's rules act once, on the frame leaving the device")
    func linkLegSkipsDeviceRules() {
        var faults = Self.faults(Self.rule(.duplicate(probability: 1)), Self.rule(.delay(fixedMillis: 4, jitterMillis: 0, distribution: .uniform), target: .link(7)))
        var frame = Self.frame(.fromDevice)
        let leaving = faults.process(frame, payload: 0, now: Self.now)
        #expect(leaving.emissions.count == 2 && leaving.emissions.allSatisfy { $0.delayMillis == 0 })
        frame.link = 7
        let leg = faults.processOnLink(frame, payload: 0, now: Self.now)
        #expect(leg.emissions.count == 1 && leg.emissions[0].delayMillis == 4)
        #expect(faults.rules[0].counters.matched == 1)
        // Without a link rule nothing needs the legs.
        var deviceOnly = Self.faults(Self.rule(.mute))
        #expect(!deviceOnly.hasLinkRules)
        #expect(deviceOnly.processOnLink(frame, payload: 0, now: Self.now).emissions.count == 1)
    }

    @Test("disconnect on a link closes that link only; kinds about the device are refused on a link")
    func linkDisconnectAndRefusals() {
        var faults = Self.faults(Self.rule(.disconnect, target: .link(2)))
        var frame = Self.frame()
        frame.link = 2
        let outcome = faults.process(frame, payload: 0, now: Self.now)
        #expect(outcome.closeLinks == [2] && !outcome.disconnect && outcome.emissions.isEmpty)
        for kind in [FaultKind.refuseLinks, .powerCycle, .hubUnreachable(hub: Self.hub)] {
            guard case .failure(let error) = faults.add(Self.rule(kind, target: .link(2))) else { Issue.record("\(kind) on a link accepted"); continue }
            #expect(error.message.contains("name the device"))
        }
    }

    @Test("delayed frames: a clock step releases those due by then, earliest first; a wall timer takes one once")
    func delayedFrames() {
        var delayed = DelayedFrames<String>()
        let late = delayed.hold("late", due: Self.now.adding(millis: 3000))
        _ = delayed.hold("early", due: Self.now.adding(millis: 1000))
        _ = delayed.hold("early too", due: Self.now.adding(millis: 1000))
        let latest = delayed.hold("latest", due: Self.now.adding(millis: 9000))
        #expect(delayed.release(dueBy: Self.now.adding(millis: 999)).isEmpty)
        #expect(delayed.release(dueBy: Self.now.adding(millis: 5000)) == ["early", "early too", "late"])
        // The wall timers of released frames find nothing: each frame goes once.
        #expect(delayed.take(late) == nil)
        #expect(delayed.take(latest) == "latest" && delayed.take(latest) == nil)
        #expect(delayed.count == 0 && delayed.release(dueBy: Self.now.adding(millis: 60_000)).isEmpty)
    }
}
