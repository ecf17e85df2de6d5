import Dispatch
import Foundation
import Logging
import SMETSCore
@testable import SMETSDaemon
import SMETSStore
import SMETSWire
import Synchronization
import Testing

/// A store gate for tests: every write passes, fails (as a full disk or an fsync EIO would), or is
/// held open inside its transaction until the test releases it. Deterministic: semaphores, no timers.
final class StoreGate: Sendable {
    enum Mode: Sendable { case pass, fail, hold }
    struct InjectedFault: Error, CustomStringConvertible { var description: String { "injected store failure (disk full)" } }

    private let mode = Mutex(Mode.pass)
    /// Signalled when a held write has made its changes and waits to commit.
    let entered = DispatchSemaphore(value: 0)
    /// Signal to let a held write commit.
    let release = DispatchSemaphore(value: 0)

    func set(_ mode: Mode) { self.mode.withLock { $0 = mode } }

    var hooks: StoreHooks {
        StoreHooks { [self] in
            switch mode.withLock({ $0 }) {
            case .pass: return
            case .fail: throw InjectedFault()
            case .hold:
                entered.signal()
                release.wait()
            }
        }
    }
}

/// The engine as an executor: readers never wait for a writer, a failed write changes nothing, and
/// a failed job is retried without disarming the timer.
@Suite("Engine as executor")
struct ExecutorTests {
    static let ppmid = EUI64("00-DB-12-34-56-78-00-05")!
    static let start = Timestamp(unixMillis: 1_800_000_000_000)

    static func fixture() throws -> (Engine, StoreGate, FakeClock, String) {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("smetsd-exec-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let lab = try LabLoader.load(directory: DaemonUnitTests.root + "/devices")
        let logger = Logger(label: "test")
        let gate = StoreGate()
        let clock = FakeClock(start)
        let engine = try Engine(store: try StateStore(directory: state, hooks: gate.hooks), lab: lab, events: EventHub(logger: logger),
                                logger: logger, realNow: { clock.now })
        return (engine, gate, clock, state)
    }

    /// Runs `body` on another thread and says whether it finished within `seconds`: a reader that
    /// waited for the held writer would not (the bound only turns a hang into a failure).
    static func finishes(within seconds: Double, _ body: @escaping @Sendable () -> Void) -> Bool {
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { body(); done.signal() }
        return done.wait(timeout: .now() + seconds) == .success
    }

    @Test("HAN reads, devices.get and list are answered while a writer holds its transaction open")
    func readersDoNotWaitForAHeldWrite() throws {
        let (engine, gate, _, _) = try Self.fixture()
        let before = try #require(engine.device(Self.ppmid))
        gate.set(.hold)
        let writerDone = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = try? engine.transferOwnership(Self.ppmid, to: "MAP-HELD")
            writerDone.signal()
        }
        #expect(gate.entered.wait(timeout: .now() + 30) == .success, "the write never reached its commit")

        let answers = Mutex<(owner: String?, reply: [UInt8]?, listed: Int, clockRead: Bool)>((nil, nil, 0, false))
        let read = ReadAttributes(attributeIDs: [BasicAttribute.swBuildID])
        let request = ZCLFrame(read, direction: .clientToServer, sequenceNumber: 7).encoded()
        let answered = Self.finishes(within: 10) {
            let owner = engine.device(Self.ppmid)?.owner
            var reply: [UInt8]?
            if case .now(let frames) = engine.handleZCL(deviceID: Self.ppmid, source: EUI64(0x1234), profile: ZCLProfileID.smartEnergy,
                                                        cluster: ZCLClusterID.basic, zcl: request) {
                reply = frames.first?.frame.encoded()
            }
            let listed = engine.list(Engine.DeviceFilter(), after: nil, limit: 100).devices.count
            _ = engine.clockReading()
            answers.withLock { $0 = (owner, reply, listed, true) }
        }
        #expect(answered, "a reader waited for the writer's transaction")
        gate.set(.pass)
        gate.release.signal()
        #expect(writerDone.wait(timeout: .now() + 30) == .success)

        let seen = answers.withLock { $0 }
        // Readers saw the state from before the write: it was not committed yet.
        #expect(seen.owner == before.owner)
        let reply = try ZCLFrame(decoding: try #require(seen.reply))
        let records = try reply.decodePayload(as: ReadAttributesResponse.self).records
        #expect(records.count == 1)
        #expect(seen.listed > 10)
        #expect(engine.device(Self.ppmid)?.owner == "MAP-HELD")
    }

    @Test("a failed store write changes neither memory nor the store, and the caller gets the error")
    func failedWritesLeaveNoTrace() throws {
        let (engine, gate, _, state) = try Self.fixture()
        let before = try #require(engine.device(Self.ppmid))
        gate.set(.fail)
        #expect(throws: StoreGate.InjectedFault.self) { try engine.transferOwnership(Self.ppmid, to: "MAP-LOST") }
        #expect(throws: StoreGate.InjectedFault.self) { try engine.leave(Self.ppmid) }
        #expect(throws: StoreGate.InjectedFault.self) { try engine.advanceClock(byMillis: 60_000) }
        #expect(throws: (any Error).self) { try engine.generate(premises: 3) }
        #expect(engine.device(Self.ppmid) == before)
        #expect(engine.clockReading().offsetMillis == 0)
        #expect(engine.counts.premises == 2)

        gate.set(.pass)
        let reopened = try StateStore(directory: state)
        #expect(try reopened.read { try $0.device(Self.ppmid) } == before)
        // Writes resume by themselves once the store takes them again.
        _ = try engine.transferOwnership(Self.ppmid, to: "MAP-BACK")
        #expect(engine.device(Self.ppmid)?.owner == "MAP-BACK")
    }

    @Test("a job that fails is retried with backoff and the timer stays armed")
    func failedJobsAreRetried() throws {
        let (engine, gate, clock, state) = try Self.fixture()
        let armed = Mutex<[Timestamp?]>([])
        engine.setTimer { time in armed.withLock { $0.append(time) } }
        let rolloverBefore = try StateStore(directory: state).read { try $0.allJobs() }.filter { $0.kind == "daily-rollover" }
        #expect(rolloverBefore.count == 1)

        // A day passes while the disk is full: the rollover fails, stays in the store, and is retried.
        gate.set(.fail)
        clock.advance(millis: 86_400_000)
        try engine.runDueJobs()
        let retryAt = try #require(armed.withLock { $0.last } ?? nil)
        #expect(retryAt.unixMillis == clock.now.unixMillis + Engine.retryDelayMillis(attempt: 1))
        #expect(try StateStore(directory: state).read { try $0.allJobs() } == rolloverBefore)

        // Still failing: the wait doubles.
        clock.advance(millis: Engine.retryDelayMillis(attempt: 1))
        try engine.runDueJobs()
        #expect(armed.withLock { $0.last }??.unixMillis == clock.now.unixMillis + Engine.retryDelayMillis(attempt: 2))

        // Space is back: the next attempt runs the job once, and the timer moves to the next rollover.
        gate.set(.pass)
        clock.advance(millis: Engine.retryDelayMillis(attempt: 2))
        try engine.runDueJobs()
        let jobs = try StateStore(directory: state).read { try $0.allJobs() }.filter { $0.kind == "daily-rollover" }
        #expect(jobs.count == 1)
        #expect(jobs.first?.payload != rolloverBefore.first?.payload, "the rollover ran and scheduled the next day")
        let next = try #require(armed.withLock { $0.last } ?? nil)
        #expect(next > clock.now)
        #expect(engine.state.withLock { $0.retrying.isEmpty })
    }

    @Test("retry delays double from one second and stop at five minutes")
    func retryDelays() {
        #expect(Engine.retryDelayMillis(attempt: 1) == 1000)
        #expect(Engine.retryDelayMillis(attempt: 2) == 2000)
        #expect(Engine.retryDelayMillis(attempt: 5) == 16_000)
        #expect(Engine.retryDelayMillis(attempt: 9) == 256_000)
        #expect(Engine.retryDelayMillis(attempt: 10) == 300_000)
        #expect(Engine.retryDelayMillis(attempt: 1000) == 300_000)
    }

    @Test("lab.generate commits in batches: a failure keeps the batches before it and says so")
    func generateInBatches() throws {
        let (engine, gate, _, _) = try Self.fixture()
        let result = try engine.generate(premises: Engine.generateBatchPremises + 5)
        #expect(result.premises == Engine.generateBatchPremises + 5)
        #expect(result.devices == (Engine.generateBatchPremises + 5) * 6)
        let page = engine.list(Engine.DeviceFilter(), after: nil, limit: 1_000_000)
        #expect(page.devices.map(\.id) == page.devices.map(\.id).sorted())
        #expect(page.total == engine.counts.devices)
        gate.set(.fail)
        #expect(throws: StoreGate.InjectedFault.self) { try engine.generate(premises: 1) }
    }

    @Test("paging without a filter gives what the filtered scan gives: same pages, cursors and total")
    func unfilteredPagingMatchesTheScan() throws {
        let (engine, _, _, _) = try Self.fixture()
        _ = try engine.generate(premises: 40)
        // No filter takes the direct path; a type filter the scanning one.
        func pages(_ filter: Engine.DeviceFilter, limit: Int) -> [Engine.Page] {
            var result: [Engine.Page] = []
            var cursor: EUI64?
            repeat {
                let page = engine.list(filter, after: cursor, limit: limit)
                result.append(page)
                cursor = page.next
            } while cursor != nil && result.count < 1000
            return result
        }
        let direct = pages(Engine.DeviceFilter(), limit: 7)
        let devices = direct.flatMap(\.devices).map(\.id)
        #expect(devices.count == engine.counts.devices)
        #expect(devices == devices.sorted() && Set(devices).count == devices.count)
        #expect(direct.allSatisfy { $0.total == engine.counts.devices })
        #expect(direct.last?.next == nil)
        // The scanning path: each type's devices, in the same order, page by page.
        for type in DeviceType.allCases {
            var byType = Engine.DeviceFilter()
            byType.type = type
            let scanned = pages(byType, limit: 7).flatMap(\.devices).map(\.id)
            #expect(scanned == devices.filter { engine.device($0)?.type == type })
        }
        #expect(engine.list(Engine.DeviceFilter(), after: devices.last, limit: 7).devices.isEmpty)
        #expect(engine.list(Engine.DeviceFilter(), after: nil, limit: devices.count).next == nil)
        #expect(engine.list(Engine.DeviceFilter(), after: nil, limit: devices.count - 1).next == devices[devices.count - 2])
    }

    @Test("merging sorted ID lists keeps them sorted")
    func mergeKeepsOrder() {
        let a = [1, 4, 9].map { EUI64(UInt64($0)) }, b = [2, 3, 10].map { EUI64(UInt64($0)) }
        #expect(Engine.merged(a, b) == [1, 2, 3, 4, 9, 10].map { EUI64(UInt64($0)) })
        #expect(Engine.merged(a, []) == a)
        #expect(Engine.merged([], b) == b)
        #expect(Engine.merged(a, [EUI64(20)]) == a + [EUI64(20)])
    }
}

/// A real-time clock the test moves by hand.
final class FakeClock: Sendable {
    private let time: Mutex<Timestamp>
    init(_ start: Timestamp) { time = Mutex(start) }
    var now: Timestamp { time.withLock { $0 } }
    func advance(millis: Int64) { time.withLock { $0 = Timestamp(unixMillis: $0.unixMillis + millis) } }
}
