import HashTreeCollections
import Logging
import SMETSCore
import SMETSDCC
import SMETSDevices
import SMETSStore
import Synchronization

/// The emulated system: every device, the virtual clock and the schedule, kept in memory for fast
/// reads and written through to the store. Every change is durable before the call returns and
/// before memory sees it: store first, then state.
///
/// Readers never wait for a writer. Writers are serialised by `writes` (so the order in the database
/// is the order in memory); each works on a draft of the state, commits its store transaction with
/// no lock that readers take, then swaps the draft in under `state`'s lock for an instant. The large
/// maps are persistent hash tries, so a draft or a reader's snapshot costs O(1) and a change to a
/// draft copies O(log n), not the whole map. Writes block on fsync: run them off the event loops.
public final class Engine: Sendable {
    struct State {
        var lab: LabSnapshot
        var devices: TreeDictionary<EUI64, Device> = [:]
        /// Every device ID in ascending order, for stable paging.
        var order: [EUI64] = []
        var premises: TreeDictionary<String, [EUI64]> = [:]
        var clock = VirtualClock()
        var schedule = Schedule()
        var armTimer: (@Sendable (Timestamp?) -> Void)?
        /// When each premises last changed tenancy: meters serve HAN devices nothing from before it.
        var tenancyChangedAt: [String: Timestamp] = [:]
        /// Jobs that failed, waiting for their next attempt (out of `schedule` meanwhile).
        var retrying: [Int64: JobRetry] = [:]
        /// Where frames the devices send go (the HAN server's attached links).
        var frameSink: (@Sendable (OutgoingZCL) -> Void)?
        /// Sends a frame to one link only (its leg after that link's fault rules).
        var linkSink: (@Sendable (OutgoingZCL, Int) -> Void)?
        /// Closes the HAN links of a removed device.
        var linkCloser: (@Sendable (EUI64) -> Void)?
    }

    public let store: StateStore
    public let events: EventHub
    let logger: Logger
    /// The current state. Held only to read a value or to swap a committed draft in; never across I/O.
    let state: ReadWriteLock<State>
    /// Serialises writers: held across a writer's store transaction, never taken by readers.
    let writes = Mutex(())
    /// Serialises job runs (the timer's and a clock change's), so that a caller of `runDueJobs`
    /// returns only when the jobs due are done, whoever took them off the schedule. Taken before `writes`.
    let jobRunner = Mutex(())
    /// OTA client and server state: RAM only (a device loses it at a power cycle), changed frame by
    /// frame on the event loops, so it has its own lock rather than a writer's turn.
    let firmwareStates: Mutex<[EUI64: DeviceFirmwareState]>
    public let startedAt: Timestamp
    let realNow: @Sendable () -> Timestamp
    let traces: FrameTraces
    /// The HAN fault rules in force (`faults.*`).
    let faults = FaultInjector()
    /// Live pcap captures of the HAN (`han.capture`).
    let captures = CaptureHub()
    /// The HAN links attached to devices, by ID (the HAN server attaches and detaches them).
    let links = LinkRegistry()


    public init(store: StateStore, lab: LabSnapshot, events: EventHub, logger: Logger,
                realNow: @escaping @Sendable () -> Timestamp = RealTime.now) throws {
        self.store = store
        self.events = events
        self.logger = logger
        self.realNow = realNow
        self.startedAt = realNow()
        self.traces = FrameTraces(maxDevices: lab.settings.maxTracedDevices)
        var initial = State(lab: lab)
        let realStart = startedAt
        let (devices, jobs, offset) = try store.write { tx -> ([Device], [ScheduledJob], Int64) in
            let offset = Int64(try tx.meta("clock.offsetMillis") ?? "0") ?? 0
            let now = VirtualClock(offsetMillis: offset).now(real: realStart)
            _ = try Self.syncLab(lab, tx: tx, now: now)
            if try tx.jobs(kind: JobKind.dailyRollover.rawValue).isEmpty {
                let today = now.dayNumber
                _ = try tx.insertJob(due: .startOfDay(today + 1), kind: JobKind.dailyRollover.rawValue, payload: String(today))
            }
            return (try tx.allDevices(), try tx.allJobs(), offset)
        }
        initial.tenancyChangedAt = try store.read { try $0.tenancyChanges() }
        firmwareStates = Mutex(try Self.restoredFirmware(store))
        initial.clock = VirtualClock(offsetMillis: offset)
        initial.schedule = Schedule(jobs)
        for device in devices { Self.index(device, into: &initial, sorted: false) }
        initial.order = devices.map(\.id)  // the store returns them in ID order
        state = ReadWriteLock(initial)
    }

    /// Inserts the lab's devices that the state does not hold yet; existing devices keep their state.
    static func syncLab(_ lab: LabSnapshot, tx: StoreTransaction, now: Timestamp) throws -> Int {
        var added = 0
        for premises in lab.definition.premises {
            try tx.upsertPremises(id: premises.id, region: premises.region, origin: .lab)
        }
        let devices = lab.definition.initialDevices(models: lab.models, join: lab.dcc.joiner)
        for device in devices where try !tx.deviceExists(device.id) {
            try tx.save(device, origin: .lab)
            added += 1
            // A new display starts with some history, so that there is something to see and to clear.
            if device.type.isDisplay, device.hub != nil,
               let meter = devices.first(where: { $0.premisesID == device.premisesID && $0.type == .esme }) {
                let today = now.dayNumber
                for day in max(0, today - Int64(lab.settings.seedHistoryDays))..<today {
                    try tx.saveConsumptionDay(device: device.id, day: day, amount: LoadProfile.dailyTotal(device: meter.id, type: .esme, day: day))
                }
            }
            if device.type.isMeterSide {
                try tx.savePrepayment(PrepaymentState(credit: 1000, emergencyCredit: 500, debt: 0), device: device.id)
            }
        }
        return added
    }

    /// Runs one change of the emulated system: `change` gets a draft of the state to read and change,
    /// commits its store transaction(s), and the draft becomes the state when it returns. When it
    /// throws, the draft is dropped: memory keeps what the store kept. Writers run one at a time;
    /// readers go on meanwhile with the state as it was. Never call from inside `change` (deadlock).
    func serialized<T>(_ change: (inout State) throws -> T) throws -> T {
        try writes.withLock { _ in
            var draft = state.read { $0 }
            let result = try change(&draft)
            // Swapped, so that the old state's storage is freed after the lock, not under it.
            state.withLock { swap(&$0, &draft) }
            return result
        }
    }

    /// A consistent view of the whole state, in O(1): for scans that must not hold the lock.
    func snapshot() -> State { state.read { $0 } }

    static func index(_ device: Device, into state: inout State, sorted: Bool = true) {
        if state.devices.updateValue(device, forKey: device.id) == nil {
            state.premises[device.premisesID, default: []].append(device.id)
            if sorted {
                let position = state.order.partitioningIndex { $0 >= device.id }
                state.order.insert(device.id, at: position)
            }
        }
    }

    // MARK: clock and schedule

    public func now() -> Timestamp { state.read { $0.clock.now(real: realNow()) } }

    /// Installs the one timer of the daemon: `arm(realTime)` must (re)schedule a call to `runDueJobs`
    /// at that wall-clock time, or cancel it for nil.
    public func setTimer(_ arm: @escaping @Sendable (Timestamp?) -> Void) {
        let next = try? serialized { state -> Timestamp? in
            state.armTimer = arm
            return Self.nextWake(state)
        }
        arm(next ?? nil)
    }

    /// When the timer must fire next (real time): the earliest job, or the earliest retry.
    static func nextWake(_ state: State) -> Timestamp? {
        let due = state.schedule.next.map { state.clock.realTime(for: $0.due) }
        let retry = state.retrying.values.map(\.notBefore).min()
        switch (due, retry) {
        case let (due?, retry?): return min(due, retry)
        case let (due?, nil): return due
        case let (nil, retry): return retry
        }
    }

    func rearm(_ state: State) {
        state.armTimer?(Self.nextWake(state))
    }

    public struct ClockReading: Sendable {
        public var now: Timestamp
        public var offsetMillis: Int64
    }

    public func clockReading() -> ClockReading {
        state.read { ClockReading(now: $0.clock.now(real: realNow()), offsetMillis: $0.clock.offsetMillis) }
    }

    public func setClock(to time: Timestamp) throws -> ClockReading {
        try changeClock { clock, real in clock.set(to: time, real: real) }
    }

    public func advanceClock(byMillis millis: Int64) throws -> ClockReading {
        guard millis > 0 else { throw DomainError(.clockInvalid, "advance the clock by a positive amount") }
        guard millis < 200 * 365 * 86_400_000 else { throw DomainError(.clockInvalid, "an advance of more than 200 years is not supported") }
        return try changeClock { clock, _ in clock.advance(byMillis: millis) }
    }

    private func changeClock(_ change: (inout VirtualClock, Timestamp) -> Void) throws -> ClockReading {
        let (before, reading) = try serialized { state -> (Timestamp, ClockReading) in
            let real = realNow()
            let before = state.clock.now(real: real)
            var clock = state.clock
            change(&clock, real)
            let now = clock.now(real: real)
            guard now.unixMillis >= 946_684_800_000, now.unixMillis < 4_102_444_800_000 else {
                throw DomainError(.clockInvalid, "the virtual clock must stay between 2000-01-01 and 2099-12-31")
            }
            try store.write { try $0.setMeta("clock.offsetMillis", String(clock.offsetMillis)) }
            state.clock = clock
            rearm(state)
            return (before, ClockReading(now: now, offsetMillis: clock.offsetMillis))
        }
        events.publish(.clockChanged, time: reading.now,
                       data: ["from": .string(before.rfc3339), "to": .string(reading.now.rfc3339)])
        // A step releases the frames delay rules hold that are due by the new time, in due order.
        faults.releaseDelayed(dueBy: reading.now)
        try runDueJobs()
        return clockReading()
    }

    /// How long a failed job waits before its next attempt: doubling from one second, at most five
    /// minutes, so a full disk is retried soon after space returns without a busy loop meanwhile.
    static func retryDelayMillis(attempt: Int) -> Int64 {
        let exponent = min(max(attempt - 1, 0), 16)
        return min(1000 << Int64(exponent), 300_000)
    }

    /// Runs every scheduled job that is due on the virtual clock, earliest first, each in its own
    /// transaction that also deletes the job, so a job runs once even across a crash. A job that
    /// fails is logged and tried again later (`retryDelayMillis`); the timer always stays armed.
    /// Throws nothing today; kept `throws` so callers need not change when a job kind may.
    public func runDueJobs() throws {
        jobRunner.withLock { _ in runDueJobsInTurn() }
    }

    private func runDueJobsInTurn() {
        while true {
            // One step takes every due job off the schedule (its rows stay in the store until each runs).
            let due = (try? serialized { state -> [ScheduledJob] in
                let real = realNow()
                // A retry goes back on the schedule once its wait is over; its entry stays (for the
                // attempt count) until the job succeeds, and a new failure moves `notBefore` on.
                for retry in state.retrying.values where retry.notBefore <= real && retry.queuedAt != retry.notBefore {
                    state.schedule.insert(retry.job)
                    state.retrying[retry.job.id]?.queuedAt = retry.notBefore
                }
                let jobs = state.schedule.popDue(at: state.clock.now(real: real))
                if jobs.isEmpty { rearm(state) }
                return jobs
            }) ?? []
            guard !due.isEmpty else { return }
            for job in due {
                do {
                    try serialized { state in
                        try run(job, state: &state, now: state.clock.now(real: realNow()))
                        state.retrying[job.id] = nil
                    }
                } catch {
                    let retry = try? serialized { state -> JobRetry in
                        let attempts = (state.retrying[job.id]?.attempts ?? 0) + 1
                        let retry = JobRetry(job: job, attempts: attempts,
                                             notBefore: Timestamp(unixMillis: realNow().unixMillis + Self.retryDelayMillis(attempt: attempts)))
                        state.retrying[job.id] = retry
                        rearm(state)
                        return retry
                    }
                    logger.error("a scheduled job failed; it will be tried again", metadata: [
                        "event": "job.failed", "job_id": .stringConvertible(job.id), "kind": .string(job.kind),
                        "attempt": .stringConvertible(retry?.attempts ?? 0), "retry_at": .string(retry?.notBefore.rfc3339 ?? "?"),
                        "error": .string("\(error)"),
                    ])
                }
            }
        }
    }

    private func run(_ job: ScheduledJob, state: inout State, now: Timestamp) throws {
        switch JobKind(rawValue: job.kind) {
        case .dailyRollover:
            // Every day that ended since the job's day is recorded at once (a clock jump of a year is
            // one transaction, not 365), keeping only the days a display holds.
            let firstDay = Int64(job.payload) ?? job.due.dayNumber - 1
            let lastDay = max(firstDay, now.dayNumber - 1)
            let historyDays = Int64(state.lab.settings.historyDays)
            let days = max(firstDay, lastDay - historyDays + 1)...lastDay
            var recorded = 0
            var accrued: [(EUI64, Prepayment.Event)] = []
            let displays = state.order.compactMap { state.devices[$0] }.filter { $0.type.isDisplay && $0.hub != nil }
            let snapshot = state
            let next = try store.write { tx -> ScheduledJob in
                try tx.deleteJob(job.id)
                for display in displays {
                    guard let meter = snapshot.premises[display.premisesID]?.first(where: { snapshot.devices[$0]?.type == .esme }) else { continue }
                    // The day of a Change of Tenancy holds only what came after it (SECMP0056: the
                    // prior occupant's part of that day is theirs, and cleared).
                    let since = snapshot.tenancyChangedAt[display.premisesID].flatMap { $0 <= now ? $0 : nil }
                    for day in days {
                        try tx.saveConsumptionDay(device: display.id, day: day, amount: LoadProfile.dailyTotal(device: meter, type: .esme, day: day, since: since))
                    }
                    try tx.pruneConsumption(device: display.id, before: lastDay - historyDays + 1)
                    recorded += 1
                }
                accrued = try Self.accrueTimeBasedDebt(days: lastDay - firstDay + 1, tx: tx)
                return try tx.insertJob(due: .startOfDay(lastDay + 2), kind: JobKind.dailyRollover.rawValue, payload: String(lastDay + 1))
            }
            state.schedule.insert(next)
            events.publish(.clockDayEnded, time: now, data: ["day": .string(Timestamp.dateString(day: lastDay)), "days": .int(Int64(days.count)),
                                                             "displays": .int(Int64(recorded))], level: .debug)
            for (meter, event) in accrued { publish(event, device: meter, now: now) }
        case .tenancyChange:
            try runTenancyJob(job, state: &state, now: now)
        case .firmwareActivation:
            try runFirmwareActivationJob(job, state: &state, now: now)
        case nil:
            try store.write { try $0.deleteJob(job.id) }
            logger.warning("dropped a scheduled job of unknown kind", metadata: ["event": "job.unknown", "kind": .string(job.kind)])
        }
    }

    /// Every day that ended adds each meter's time-based debt (the Prepayment machine decides), in
    /// the rollover's transaction: a day is accrued once, with the consumption it recorded.
    static func accrueTimeBasedDebt(days: Int64, tx: StoreTransaction) throws -> [(EUI64, Prepayment.Event)] {
        var events: [(EUI64, Prepayment.Event)] = []
        for (meter, state) in try tx.debtAccruingMeters() {
            for action in Prepayment(device: meter).receive(.daysEnded(days, balance: Prepayment.Balance(state))) {
                switch action {
                case .persist(let change): try apply(change, device: meter, tx: tx)
                case .event(let event): events.append((meter, event))
                case .respond: break
                }
            }
        }
        return events
    }

    // MARK: reads

    public var lab: LabSnapshot { state.read { $0.lab } }

    public func device(_ id: EUI64) -> Device? { state.read { $0.devices[id] } }

    public func requireDevice(_ id: EUI64) throws(DomainError) -> Device {
        guard let device = device(id) else { throw DomainError(.deviceNotFound, "no device \(id)") }
        return device
    }

    public struct Counts: Sendable { public var devices: Int; public var premises: Int }
    public var counts: Counts { state.read { Counts(devices: $0.devices.count, premises: $0.premises.count) } }

    public struct DeviceFilter: Sendable {
        public var type: DeviceType?
        public var premises: String?
        public var status: InventoryStatus?
        public var mode: SMETSMode?
        public var model: String?
        public var hub: EUI64?
        public var owner: String?
        public var manufacturerCode: String?
        public var region: CSPRegion?
        /// The firmware version the device presents (as the inventory holds it for its mode).
        public var presentedFirmware: FirmwareVersion?
        public init() {}

        var matchesEverything: Bool {
            type == nil && premises == nil && status == nil && mode == nil && model == nil && hub == nil && owner == nil
                && manufacturerCode == nil && region == nil && presentedFirmware == nil
        }

        func matches(_ device: Device, lab: LabSnapshot) -> Bool {
            let models = lab.models
            if let type, device.type != type { return false }
            if let premises, device.premisesID != premises { return false }
            if let status, device.status != status { return false }
            if let mode, device.mode != mode { return false }
            if let model, device.modelKey != model { return false }
            if let hub, device.hub != hub { return false }
            if let owner, device.owner != owner { return false }
            if let manufacturerCode, models[device.modelKey]?.manufacturer.code.uppercased() != manufacturerCode.uppercased() { return false }
            if let region, device.region != region { return false }
            if let presentedFirmware {
                guard let model = models[device.modelKey],
                      lab.cpl.presentedFirmware(model: model, firmware: device.firmwareVersion, mode: device.mode, regime: lab.regime) == presentedFirmware
                else { return false }
            }
            return true
        }
    }

    public struct Page: Sendable { public var devices: [Device]; public var next: EUI64?; public var total: Int }

    /// Devices matching `filter` in ID order, starting after `cursor`.
    public func list(_ filter: DeviceFilter, after cursor: EUI64?, limit: Int) -> Page {
        // A scan of every device: on a snapshot, so that no reader or writer waits for it.
        let state = snapshot()
        let start = cursor.map { id in state.order.partitioningIndex { $0 > id } } ?? 0
        if filter.matchesEverything {
            // No filter: the total is the count, and a page costs its own devices and a binary search,
            // not a scan (paging through 1,020,015 devices took 0.74 s a page).
            let end = start + min(max(0, limit), state.order.count - start)  // no overflow for any limit
            let page = state.order[start..<end].compactMap { state.devices[$0] }
            let next = end < state.order.count ? page.last?.id : nil
            return Page(devices: page, next: next, total: state.order.count)
        }
        var page: [Device] = []
        var total = 0
        var next: EUI64?
        for (position, id) in state.order.enumerated() {
            guard let device = state.devices[id], filter.matches(device, lab: state.lab) else { continue }
            total += 1
            if position >= start {
                if page.count < limit { page.append(device) } else if next == nil { next = page.last?.id }
            }
        }
        return Page(devices: page, next: next, total: total)
    }

    public func presentedFirmware(of device: Device) -> FirmwareVersion {
        state.read { state in
            guard let model = state.lab.models[device.modelKey] else { return device.firmwareVersion }
            return state.lab.cpl.presentedFirmware(model: model, firmware: device.firmwareVersion, mode: device.mode, regime: state.lab.regime)
        }
    }

    public func model(for device: Device) -> DeviceModel? { state.read { $0.lab.models[device.modelKey] } }

    public func dataCounts(_ id: EUI64) throws -> DataCounts { try store.read { try $0.dataCounts(device: id) } }

    // MARK: changes

    public struct NewDevice: Sendable {
        public var id: EUI64?
        public var type: DeviceType
        public var premises: String
        public var model: String
        public var owner: String?
        public var preNotified: SMETSVersion?
        public var status: InventoryStatus?
        public var smetsVersion: SMETSVersion?
        public init(id: EUI64?, type: DeviceType, premises: String, model: String, owner: String?, preNotified: SMETSVersion?,
                    status: InventoryStatus?, smetsVersion: SMETSVersion?) {
            self.id = id; self.type = type; self.premises = premises; self.model = model; self.owner = owner
            self.preNotified = preNotified; self.status = status; self.smetsVersion = smetsVersion
        }
    }

    public func create(_ request: NewDevice) throws -> Device {
        let device = try serialized { state -> Device in
            guard let model = state.lab.models[request.model] else {
                throw DomainError(.modelNotFound, "no device model '\(request.model)'; known: \(state.lab.models.keys.sorted().joined(separator: ", "))")
            }
            guard model.type == request.type else {
                throw DomainError(.invalidState, "model '\(model.key)' is a \(model.type), not a \(request.type)")
            }
            guard let members = state.premises[request.premises], let anyMember = members.first.flatMap({ state.devices[$0] }) else {
                throw DomainError(.premisesNotFound, "no premises '\(request.premises)'")
            }
            if request.type == .chf { throw DomainError(.invalidState, "a premises has exactly one Communications Hub; it cannot be created here") }
            // MP202 §2: a PPMID's pre-notification must include the SMETS version; never guess it.
            if request.type == .ppmid && request.preNotified == nil {
                throw DomainError(.invalidState, "preNotified: a PPMID's pre-notification must name its SMETS version, SMETS1 or SMETS2+ (MP202 §2)")
            }
            let id = request.id ?? Self.freeID(in: state)
            guard state.devices[id] == nil else { throw DomainError(.deviceExists, "device \(id) already exists") }
            let device = Device(id: id, type: request.type, premisesID: request.premises, modelKey: model.key,
                                owner: request.owner ?? anyMember.owner,
                                preNotified: request.preNotified ?? model.smetsVersions.last ?? .smets2,
                                status: request.status ?? .whitelisted, firmwareVersion: model.firmwareVersion,
                                region: anyMember.region)
            try store.write { tx in
                try tx.save(device, origin: .api)
                if device.type.isMeterSide { try tx.savePrepayment(PrepaymentState(credit: 1000, emergencyCredit: 500, debt: 0), device: id) }
            }
            Self.index(device, into: &state)
            return device
        }
        events.publish(.deviceCreated, device: device.id, time: now(),
                       data: ["type": .string(device.type.name), "premises": .string(device.premisesID), "model": .string(device.modelKey)])
        return device
    }

    static func freeID(in state: State) -> EUI64 {
        var candidate = (state.order.last?.rawValue ?? 0x00DB_1234_0000_0000) &+ 1
        while state.devices[EUI64(candidate)] != nil { candidate &+= 1 }
        return EUI64(candidate)
    }

    public func remove(_ id: EUI64) throws {
        try serialized { state in
            guard let device = state.devices[id] else { throw DomainError(.deviceNotFound, "no device \(id)") }
            if device.type == .chf, state.premises[device.premisesID]?.contains(where: { state.devices[$0]?.hub == id }) == true {
                throw DomainError(.invalidState, "hub \(id) still has devices joined; make them leave first")
            }
            try store.write { try $0.removeDevice(id) }
            state.devices[id] = nil
            if let position = state.order.firstIndex(of: id) { state.order.remove(at: position) }
            state.premises[device.premisesID]?.removeAll { $0 == id }
        }
        state.read { $0.linkCloser }?(id)
        events.publish(.deviceRemoved, device: id, time: now())
    }

    public struct JoinResult: Sendable { public var device: Device; public var transitions: [InventoryStatus]; public var presented: FirmwareVersion }

    /// A device joins a Communications Hub; MP202 decides its mode.
    public func join(_ id: EUI64, hub hubID: EUI64) throws -> JoinResult {
        let result = try serialized { state -> JoinResult in
            guard var device = state.devices[id] else { throw DomainError(.deviceNotFound, "no device \(id)") }
            guard let hub = state.devices[hubID] else { throw DomainError(.deviceNotFound, "no device \(hubID)") }
            guard let model = state.lab.models[device.modelKey] else { throw DomainError(.modelNotFound, "no model \(device.modelKey)") }
            if device.hub != nil && device.hub != hubID { device = try HANMembership.leave(device: device) }
            let outcome = try state.lab.dcc.join(device: device, hub: hub, model: model)
            try store.write { try $0.save(outcome.device, origin: .api) }
            state.devices[id] = outcome.device
            return JoinResult(device: outcome.device, transitions: outcome.transitions, presented: outcome.presentedFirmware)
        }
        let time = now()
        events.publish(.deviceJoined, device: id, time: time,
                       data: ["hub": .string(hubID.description), "mode": .string(result.device.mode.name),
                              "presentedFirmwareVersion": .string(result.presented.hex)])
        for status in result.transitions {
            events.publish(.deviceStatus, device: id, time: time, data: ["status": .string(status.rawValue)])
        }
        return result
    }

    /// The manual SMI change a supplier asks the DCC for after the interim solution's failed install
    /// (MP202 §2): the inventory takes the hub's SMETS version and the PPMID is commissioned.
    public func correctInventory(_ id: EUI64) throws -> JoinResult {
        let result = try serialized { state -> JoinResult in
            guard let device = state.devices[id] else { throw DomainError(.deviceNotFound, "no device \(id)") }
            guard let hubID = device.hub, let hub = state.devices[hubID] else {
                throw DomainError(.notJoined, "\(id) has not joined a Communications Hub; there is nothing to correct")
            }
            guard let model = state.lab.models[device.modelKey] else { throw DomainError(.modelNotFound, "no model \(device.modelKey)") }
            let outcome = try DCCRules(cpl: state.lab.cpl, regime: state.lab.regime).correctInventory(device: device, hub: hub, model: model)
            try store.write { try $0.save(outcome.device, origin: .api) }
            state.devices[id] = outcome.device
            return JoinResult(device: outcome.device, transitions: outcome.transitions, presented: outcome.presentedFirmware)
        }
        let time = now()
        for status in result.transitions {
            events.publish(.deviceStatus, device: id, time: time, data: ["status": .string(status.rawValue), "cause": "inventory.correct"])
        }
        return result
    }

    public func leave(_ id: EUI64) throws -> Device {
        let (device, hub) = try serialized { state -> (Device, EUI64?) in
            guard let device = state.devices[id] else { throw DomainError(.deviceNotFound, "no device \(id)") }
            let left = try HANMembership.leave(device: device)
            try store.write { try $0.save(left, origin: .api) }
            state.devices[id] = left
            return (left, device.hub)
        }
        events.publish(.deviceLeft, device: id, time: now(), data: ["hub": .string(hub?.description ?? "")])
        return device
    }

    /// How many premises `generate` adds in one transaction: small enough that another writer waits
    /// at most one batch (some 0.1 s), large enough that the fsyncs do not dominate.
    static let generateBatchPremises = 1000

    /// Adds `count` generated premises (hub, ESME, GSME, GPF, PPMID, IHD each), joined, in batches of
    /// `generateBatchPremises`, each one transaction: every batch is all or nothing, and a failure
    /// leaves the batches before it in place (the error says how many).
    public func generate(premises count: Int) throws -> (premises: Int, devices: Int) {
        // Seconds of CPU at 20,000 premises: on a bulk thread, below the event loops.
        try BulkWork.run(nice: lab.settings.bulkThreadNice) { [self] in try generateNow(premises: count) }
    }

    private func generateNow(premises count: Int) throws -> (premises: Int, devices: Int) {
        let lab = self.lab
        guard count > 0, count <= lab.settings.maxGeneratePremises else {
            throw DomainError(.limitExceeded, "generate 1...\(lab.settings.maxGeneratePremises) premises at a time (maxGeneratePremises)")
        }
        let models = try Self.generatorModels(lab)
        let owners = Array(Set(lab.definition.premises.flatMap { $0.devices.map(\.owner) })).sorted()
        var premisesAdded = 0, devicesAdded = 0
        var nextIndex = 0
        while premisesAdded < count {
            let batch = min(Self.generateBatchPremises, count - premisesAdded)
            do {
                let (firstIndex, created) = try serialized { state -> (Int, Int) in
                    var firstIndex = nextIndex
                    while state.premises[LabGenerator.premisesID(firstIndex)] != nil { firstIndex += 1 }
                    var created: [Device] = []
                    created.reserveCapacity(batch * 6)
                    for index in firstIndex..<(firstIndex + batch) {
                        created += LabGenerator.devices(index: index, models: models, owners: owners, join: state.lab.dcc.joiner)
                    }
                    if let clash = created.first(where: { state.devices[$0.id] != nil }) {
                        throw DomainError(.deviceExists, "generated device \(clash.id) already exists")
                    }
                    try store.write { tx in
                        for index in firstIndex..<(firstIndex + batch) {
                            try tx.upsertPremises(id: LabGenerator.premisesID(index), region: CSPRegion.allCases[index % 3], origin: .generated)
                        }
                        for device in created {
                            try tx.save(device, origin: .generated)
                            if device.type.isMeterSide { try tx.savePrepayment(PrepaymentState(credit: 1000, emergencyCredit: 500, debt: 0), device: device.id) }
                        }
                    }
                    for device in created {
                        state.devices[device.id] = device
                        state.premises[device.premisesID, default: []].append(device.id)
                    }
                    state.order = Self.merged(state.order, created.map(\.id).sorted())
                    return (firstIndex, created.count)
                }
                nextIndex = firstIndex + batch
                premisesAdded += batch
                devicesAdded += created
            } catch {
                guard premisesAdded > 0 else { throw error }
                throw DomainError(.invalidState, "generated \(premisesAdded) premises (\(devicesAdded) devices) before a batch failed: \(error)")
            }
        }
        events.publish(.labGenerated, time: now(), data: ["premises": .int(Int64(premisesAdded)), "devices": .int(Int64(devicesAdded))])
        return (premisesAdded, devicesAdded)
    }

    /// Two ascending ID lists as one, in O(n): cheaper than sorting all again for every batch.
    static func merged(_ a: [EUI64], _ b: [EUI64]) -> [EUI64] {
        guard let firstOfB = b.first else { return a }
        if let lastOfA = a.last, lastOfA < firstOfB { return a + b }
        var result: [EUI64] = []
        result.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count, j < b.count {
            if a[i] <= b[j] { result.append(a[i]); i += 1 } else { result.append(b[j]); j += 1 }
        }
        result += a[i...]
        result += b[j...]
        return result
    }

    static func generatorModels(_ lab: LabSnapshot) throws(DomainError) -> LabGenerator.Models {
        func members(_ version: SMETSVersion) -> LabGenerator.Members? {
            func pick(_ type: DeviceType, prefer: (DeviceModel) -> Bool = { _ in true }) -> DeviceModel? {
                let candidates = lab.models.values.filter { $0.type == type && $0.smetsVersions.contains(version) }.sorted { $0.key < $1.key }
                // Displays built to a current specification, with the most single-version models first.
                return candidates.first(where: prefer) ?? candidates.first
            }
            let current: (DeviceModel) -> Bool = { $0.handlesChangeOfTenancy }
            guard let hub = pick(.chf, prefer: { $0.smetsVersions == [version] }), let esme = pick(.esme), let gsme = pick(.gsme),
                  let gpf = pick(.gpf), let ppmid = pick(.ppmid, prefer: { $0.isDualMode }), let ihd = pick(.ihd, prefer: current) else { return nil }
            return LabGenerator.Members(hub: hub, esme: esme, gsme: gsme, gpf: gpf, ppmid: ppmid, ihd: ihd)
        }
        guard let smets2 = members(.smets2) else {
            throw DomainError(.modelNotFound, "lab.generate needs a SMETS2+ CHF, ESME, GSME, GPF, PPMID and IHD model in devices/models")
        }
        return LabGenerator.Models(smets2: smets2, smets1: members(.smets1))
    }

    /// Reloads the devices folder: new lab devices are added; models, the CPL and settings replaced.
    /// Gives an asset to another owner (MAP).
    public func transferOwnership(_ id: EUI64, to owner: String) throws -> Device {
        let (before, after) = try serialized { state -> (Device, Device) in
            guard var device = state.devices[id] else { throw DomainError(.deviceNotFound, "no device \(id)") }
            guard !owner.isEmpty else { throw DomainError(.invalidState, "name the new owner, e.g. MAP-BETA") }
            let before = device
            device.owner = owner
            try store.write { try $0.save(device, origin: .api) }
            state.devices[id] = device
            return (before, device)
        }
        events.publish(.assetTransferred, device: id, time: now(), data: ["from": .string(before.owner), "to": .string(after.owner)])
        return after
    }

    public func reload(_ lab: LabSnapshot) throws -> Int {
        let added = try serialized { state -> Int in
            let now = state.clock.now(real: realNow())
            let added = try store.write { tx in try Self.syncLab(lab, tx: tx, now: now) }
            state.lab = lab
            if added > 0 {
                for device in try store.read({ try $0.allDevices() }) where state.devices[device.id] == nil {
                    Self.index(device, into: &state)
                }
            }
            return added
        }
        events.publish(.daemonReloaded, time: now(), data: ["added": .int(Int64(added)), "models": .int(Int64(lab.models.count)),
                                                               "cplEntries": .int(Int64(lab.cpl.entries.count))])
        return added
    }
}

/// The kinds of scheduled job, as the store names them.
enum JobKind: String, Sendable {
    case dailyRollover = "daily-rollover"
    case tenancyChange = "tenancy-change"
    case firmwareActivation = "firmware-activation"
}

/// A job that failed and waits for its next attempt.
struct JobRetry: Sendable {
    var job: ScheduledJob
    var attempts: Int
    /// Real time of the next attempt.
    var notBefore: Timestamp
    /// The `notBefore` for which the job was put back on the schedule, so it is put back once.
    var queuedAt: Timestamp?
}

extension LabSnapshot {
    /// The DCC's rules under this lab's CPL and regime.
    var dcc: DCCRules { DCCRules(cpl: cpl, regime: regime) }
}

extension Array {
    /// The first index whose element satisfies `predicate`, for a predicate false then true along the array.
    func partitioningIndex(where predicate: (Element) -> Bool) -> Int {
        var low = 0, high = count
        while low < high {
            let mid = (low + high) / 2
            if predicate(self[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
