import Logging
import SMETSCore
import SMETSDevices
import SMETSWire
import Synchronization

/// Sends a frame the fault model let through, with the bytes it settled on (maybe corrupted or cut).
typealias FaultSend = @Sendable ([UInt8]) -> Void

/// The fault rules in force (`faults.*`) and what carrying them out needs from the HAN server.
/// With no rule set, the HAN path reads one atomic flag per frame and nothing else.
final class FaultInjector: Sendable {
    private let active = Atomic<Bool>(false)
    /// Whether a rule names one link: read only on the impaired path, never when no rule is set.
    private let linkRules = Atomic<Bool>(false)
    private let model = Mutex(HANFaults<FaultSend>(seed: 0))
    /// Frames delay rules hold until their wall timer fires or a clock step passes their due time.
    private let delayed = Mutex(DelayedFrames<@Sendable () -> Void>())
    /// Runs work after a delay, off the caller's thread (the HAN server's event loops, then the pool).
    private let scheduler = Mutex<(@Sendable (Int, @escaping @Sendable () -> Void) -> Void)?>(nil)
    /// Closes a device's links (no ERROR: the radio link is simply gone).
    private let linkDropper = Mutex<(@Sendable (EUI64) -> Void)?>(nil)
    /// Closes one link.
    private let linkCloser = Mutex<(@Sendable (Int) -> Void)?>(nil)

    /// Whether any rule is set: the one check on the HAN path when none is.
    var isActive: Bool { active.load(ordering: .relaxed) }

    func change<T>(_ body: (inout HANFaults<FaultSend>) -> T) -> T {
        model.withLock { model in
            let result = body(&model)
            active.store(!model.isEmpty, ordering: .relaxed)
            linkRules.store(model.hasLinkRules, ordering: .relaxed)
            return result
        }
    }

    var rules: [(rule: FaultRule, counters: FaultCounters)] { model.withLock { $0.rules } }

    func setScheduler(_ schedule: @escaping @Sendable (Int, @escaping @Sendable () -> Void) -> Void) { scheduler.withLock { $0 = schedule } }
    func setLinkDropper(_ drop: @escaping @Sendable (EUI64) -> Void) { linkDropper.withLock { $0 = drop } }
    func setLinkCloser(_ close: @escaping @Sendable (Int) -> Void) { linkCloser.withLock { $0 = close } }

    var hasLinkRules: Bool { linkRules.load(ordering: .relaxed) }

    /// Runs `work` `millis` after `now` (virtual): on a wall timer, or earlier when a step of the
    /// virtual clock passes that time (``releaseDelayed(dueBy:)``), whichever comes first, once.
    func later(_ millis: Int, now: Timestamp, _ work: @escaping @Sendable () -> Void) {
        // Without a HAN server (unit tests) there is no timer: the frame goes at once.
        guard millis > 0, let schedule = scheduler.withLock({ $0 }) else { return work() }
        let token = delayed.withLock { $0.hold(work, due: now.adding(millis: Int64(millis))) }
        schedule(millis) { [self] in delayed.withLock { $0.take(token) }?() }
    }

    /// A clock step to `now`: every held frame due by then goes, earliest first.
    func releaseDelayed(dueBy now: Timestamp) {
        for work in delayed.withLock({ $0.release(dueBy: now) }) { work() }
    }

    /// How many frames delay rules hold now.
    var delayedCount: Int { delayed.withLock { $0.count } }

    func dropLinks(of device: EUI64) { linkDropper.withLock { $0 }?(device) }
    func closeLink(_ id: Int) { linkCloser.withLock { $0 }?(id) }
}

extension Engine {
    /// Passes one frame through the fault rules and carries out their outcome: `send` runs for each
    /// copy that goes out (now or later), never for a dropped frame. Call only when `faults.isActive`.
    /// `link`: the HAN link a rig's frame came in on (its link rules act too).
    func impair(device: EUI64, peer: EUI64, direction: FaultDirection, cluster: UInt16, zcl: [UInt8], link: Int? = nil,
                send: @escaping FaultSend) {
        let (now, premises) = state.read { ($0.clock.now(real: realNow()), $0.devices[device]?.premisesID ?? "") }
        let frame = FaultFrame(device: device, premises: premises, peer: peer, direction: direction, cluster: cluster, zcl: zcl, link: link)
        let outcome = faults.change { $0.process(frame, payload: send, now: now) }
        carryOut(outcome, device: device, now: now)
    }

    private func carryOut(_ outcome: FaultOutcome<FaultSend>, device: EUI64, now: Timestamp) {
        carryOut(outcome.applied, emissions: outcome.emissions, now: now)
        for link in outcome.closeLinks { faults.closeLink(link) }
        if outcome.disconnect { faults.dropLinks(of: device) }
        if outcome.powerCycle { powerCycle(device) }
    }

    func carryOut(_ applied: [FaultApplication], emissions: [FaultEmission<FaultSend>], now: Timestamp) {
        for application in applied { publishFault(application, now: now) }
        for emission in emissions {
            let (send, zcl) = (emission.payload, emission.frame.zcl)
            faults.later(emission.delayMillis, now: now) { send(zcl) }
        }
    }

    /// A frame a device sent, after the device's rules: to every link attached to it. When a rule
    /// names a link, the frame is captured once (it went out on the air) and then each link's leg
    /// passes that link's rules on its own, so a rule on one link leaves the others alone.
    func sendToLinks(_ outgoing: OutgoingZCL) {
        let (sink, linkSink) = state.read { ($0.frameSink, $0.linkSink) }
        guard faults.hasLinkRules, let linkSink else { sink?(outgoing); return }
        capture(outgoing.hanData)
        let (now, premises) = state.read { ($0.clock.now(real: realNow()), $0.devices[outgoing.from]?.premisesID ?? "") }
        for (link, _) in links.identifiedChannels(of: outgoing.from) {
            let frame = FaultFrame(device: outgoing.from, premises: premises, peer: outgoing.to, direction: .fromDevice,
                                   cluster: outgoing.cluster, zcl: outgoing.zcl, link: link)
            let leg: FaultSend = { zcl in
                var sent = outgoing
                sent.encodedZCL = zcl
                linkSink(sent, link)
            }
            carryOut(faults.change { $0.processOnLink(frame, payload: leg, now: now) }, device: outgoing.from, now: now)
        }
    }

    /// `fault.applied`: an event and one log line (a journald entry with RULE_ID, FAULT, ...) per fault done.
    func publishFault(_ application: FaultApplication, now: Timestamp) {
        let frame = application.frame
        var data: [String: EventValue] = [
            "rule_id": .int(Int64(application.ruleID)), "fault": .string(application.kind), "detail": .string(application.detail),
            "direction": .string(frame.direction.rawValue), "peer": .string(frame.peer.description),
            "cluster": .string(upperHex(frame.cluster, width: 4)), "zcl": .string(frame.zcl.map { upperHex($0, width: 2) }.joined()),
        ]
        if let link = frame.link { data["link"] = .int(Int64(link)) }
        events.publish(.faultApplied, device: frame.device, time: now, data: data, level: .notice, message: "fault applied")
    }

    /// Whether a new link to `device` is refused by a rule now (published as a fault when it is).
    func refusesLink(to device: EUI64) -> Bool {
        guard faults.isActive else { return false }
        let (now, premises) = state.read { ($0.clock.now(real: realNow()), $0.devices[device]?.premisesID ?? "") }
        guard let id = faults.change({ $0.refusesLink(device: device, premises: premises, now: now) }) else { return false }
        let frame = FaultFrame(device: device, premises: premises, peer: device, direction: .toDevice, cluster: 0, zcl: [])
        publishFault(FaultApplication(ruleID: id, kind: "refuseLinks", detail: "link refused", frame: frame), now: now)
        return true
    }

    /// A power cycle: the device loses what it keeps in RAM (a download in progress, a hub's offers,
    /// its links) and keeps its flash (the firmware it runs and the image it holds, its logs and
    /// everything else in the store). It comes back at once and announces itself the way the HAN
    /// link contract allows (it has no Device_annce frame): its links close, a HELLO gets a WELCOME
    /// computed then, and `device.powerCycled` names the links it closed and what the WELCOME says.
    func powerCycle(_ id: EUI64) {
        let held = (try? store.read { try $0.allHeldFirmware() })?[id]
        firmwareStates.withLock { states in
            if let held {
                var state = DeviceFirmwareState()
                state.client = OTAClient(restoring: held)
                states[id] = state
            } else {
                states[id] = nil
            }
        }
        let closed = links.identifiedChannels(of: id).map(\.id)
        faults.dropLinks(of: id)
        var data: [String: EventValue] = ["heldImage": .bool(held != nil), "linksClosed": .array(closed.map { .int(Int64($0)) })]
        if let device = device(id) {
            // The identity a rig re-attaching now is welcomed with (han-link.md: WELCOME).
            data["firmware"] = .string(device.firmwareVersion.description)
            data["deviceType"] = .string(device.type.description)
        }
        events.publish(.devicePowerCycled, device: id, time: now(), data: data)
    }
}

/// Live captures (`han.capture`): each tap encodes the frames of its devices as pcap records (or
/// pcapng blocks) and
/// hands them to its sink (a control connection). With no tap, the HAN path reads one atomic flag.
final class CaptureHub: Sendable {
    struct Tap {
        /// The devices whose frames (either end) it takes; nil: every device.
        var devices: Set<EUI64>?
        /// Stamps frame n at n ms after 2000-01-01 rather than at its virtual time: two runs with
        /// the same traffic then give the same bytes.
        var logical: Bool
        var format: CaptureFormat
        var encoder = HANCaptureEncoder()
        var frames: Int64 = 0
        var sink: @Sendable ([UInt8]) -> Void
    }

    private let count = Atomic<Int>(0)
    private let taps = Mutex<(next: Int, taps: [Int: Tap])>((0, [:]))

    var isActive: Bool { count.load(ordering: .relaxed) > 0 }

    func add(devices: Set<EUI64>?, logical: Bool, format: CaptureFormat, sink: @escaping @Sendable ([UInt8]) -> Void) -> Int {
        taps.withLock { state in
            state.next += 1
            state.taps[state.next] = Tap(devices: devices, logical: logical, format: format, sink: sink)
            count.store(state.taps.count, ordering: .relaxed)
            return state.next
        }
    }

    func remove(_ id: Int) {
        taps.withLock { state in
            state.taps[id] = nil
            count.store(state.taps.count, ordering: .relaxed)
        }
    }

    /// A frame on the air. The sinks run under the lock, so each tap's records leave in the order
    /// they were numbered (a sink only queues bytes on a channel).
    func capture(_ data: HANData, time: Timestamp) {
        taps.withLock { state in
            for id in state.taps.keys {
                guard var tap = state.taps[id],
                      tap.devices.map({ $0.contains(data.source) || $0.contains(data.destination) }) ?? true else { continue }
                tap.frames += 1
                let micros = tap.logical ? Timestamp.zigbeeEpochOffset * 1_000_000 + tap.frames * 1000 : time.unixMillis * 1000
                let record = tap.encoder.record(data, micros: micros, format: tap.format)
                state.taps[id] = tap
                tap.sink(record)
            }
        }
    }
}

extension Engine {
    /// Captures a frame a device sent or received, when anyone captures.
    func capture(_ data: HANData) {
        guard captures.isActive else { return }
        captures.capture(data, time: now())
    }
}

extension Engine {
    /// A frame between two emulated devices inside one synchronous exchange (`firmware.update`):
    /// through the sender's rules and the receiver's, returning the copies that arrive, at once.
    /// Frames a reorder rule releases from elsewhere go their own way.
    func impairNow(_ outgoing: OutgoingZCL, bytes: [UInt8]) -> [[UInt8]] {
        let arrived = Mutex<[[UInt8]]>([])
        let (now, senderPremises, receiverPremises) = state.read {
            ($0.clock.now(real: realNow()), $0.devices[outgoing.from]?.premisesID ?? "", $0.devices[outgoing.to]?.premisesID ?? "")
        }
        let sent = FaultFrame(device: outgoing.from, premises: senderPremises, peer: outgoing.to, direction: .fromDevice,
                              cluster: outgoing.cluster, zcl: bytes)
        let first = faults.change { $0.process(sent, payload: { zcl in arrived.withLock { $0.append(zcl) } }, now: now) }
        carryOutNow(first, device: outgoing.from, now: now)
        var delivered: [[UInt8]] = []
        for zcl in arrived.withLock({ list in defer { list.removeAll() }; return list }) {
            let received = FaultFrame(device: outgoing.to, premises: receiverPremises, peer: outgoing.from, direction: .toDevice,
                                      cluster: outgoing.cluster, zcl: zcl)
            let second = faults.change { $0.process(received, payload: { zcl in arrived.withLock { $0.append(zcl) } }, now: now) }
            carryOutNow(second, device: outgoing.to, now: now)
            delivered += arrived.withLock { list in defer { list.removeAll() }; return list }
        }
        return delivered
    }

    private func carryOutNow(_ outcome: FaultOutcome<FaultSend>, device: EUI64, now: Timestamp) {
        for application in outcome.applied { publishFault(application, now: now) }
        for emission in outcome.emissions { emission.payload(emission.frame.zcl) }
        for link in outcome.closeLinks { faults.closeLink(link) }
        if outcome.disconnect { faults.dropLinks(of: device) }
        if outcome.powerCycle { powerCycle(device) }
    }
}
