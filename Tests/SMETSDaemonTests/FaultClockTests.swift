import Foundation
import SMETSCore
@testable import SMETSDaemon
import SMETSDevices
import SMETSWire
import Synchronization
import Testing

/// Delay rules on a stepped virtual clock: a step releases the frames due by then, in due order, with
/// no timer involved; the wall timer of a frame a step released finds nothing. Deterministic: the
/// real clock is fake and the wall timers are recorded, never run unless the test runs them.
@Suite("Faults on the stepped clock")
struct FaultClockTests {
    static let rig = EUI64("00-DB-12-34-56-78-90-A1")!

    final class Recorder: Sendable {
        let sent = Mutex<[UInt8]>([])
        let timers = Mutex<[(millis: Int, work: @Sendable () -> Void)]>([])
    }

    /// A PPMID answer (Default Response) with sequence number `tsn`, from the device to a rig.
    static func answer(_ tsn: UInt8) throws -> OutgoingZCL {
        OutgoingZCL(from: ExecutorTests.ppmid, to: rig, cluster: 0x0000, frame: try ZCLFrame(decoding: [0x18, tsn, 0x0B, 0x00, 0x00]))
    }

    @Test("clock.advance releases delayed frames due by the new time, earliest first; the rest wait")
    func stepReleasesDueFrames() throws {
        let (engine, _, _, state) = try ExecutorTests.fixture()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let recorder = Recorder()
        engine.setFrameSink { outgoing in recorder.sent.withLock { $0.append(outgoing.zcl[1]) } }
        engine.faults.setScheduler { millis, work in recorder.timers.withLock { $0.append((millis, work)) } }
        // Frame 1 waits 30 s, frame 2 10 s, frame 3 90 s (a fixed delay chosen per frame by rule window).
        for (tsn, seconds) in [(UInt8(1), 30), (2, 10), (3, 90)] {
            let added = engine.faults.change { faults in
                _ = faults.clear()
                return faults.add(FaultRule(id: 0, kind: .delay(fixedMillis: seconds * 1000, jitterMillis: 0, distribution: .uniform),
                                            target: .device(ExecutorTests.ppmid)))
            }
            _ = try added.get()
            engine.emit([try Self.answer(tsn)])
        }
        #expect(recorder.sent.withLock { $0 }.isEmpty)
        #expect(recorder.timers.withLock { $0.map(\.millis) } == [30_000, 10_000, 90_000])
        _ = try engine.advanceClock(byMillis: 5_000)
        #expect(recorder.sent.withLock { $0 }.isEmpty)
        _ = try engine.advanceClock(byMillis: 25_000)  // now + 30 s: frames 2 and 1 are due
        #expect(recorder.sent.withLock { $0 } == [2, 1])
        #expect(engine.faults.delayedCount == 1)
        // Their wall timers fire later and find nothing; frame 3's timer sends it.
        for timer in recorder.timers.withLock({ $0 }) { timer.work() }
        #expect(recorder.sent.withLock { $0 } == [2, 1, 3])
        #expect(engine.faults.delayedCount == 0)
    }

    @Test("the same steps give the same frames in the same order, whatever the wall clock does")
    func stepsAreDeterministic() throws {
        func run() throws -> [UInt8] {
            let (engine, _, clock, state) = try ExecutorTests.fixture()
            defer { try? FileManager.default.removeItem(atPath: state) }
            let recorder = Recorder()
            engine.setFrameSink { outgoing in recorder.sent.withLock { $0.append(outgoing.zcl[1]) } }
            engine.faults.setScheduler { millis, work in recorder.timers.withLock { $0.append((millis, work)) } }
            _ = engine.faults.change { $0.add(FaultRule(id: 0, kind: .delay(fixedMillis: 1000, jitterMillis: 4000, distribution: .uniform),
                                                        target: .device(ExecutorTests.ppmid), seed: 5)) }
            for tsn in 0..<20 { engine.emit([try Self.answer(UInt8(tsn))]) }
            clock.advance(millis: 3)  // real time passing between steps changes nothing
            var order: [UInt8] = []
            for _ in 0..<5 {
                _ = try engine.advanceClock(byMillis: 1000)
                order += recorder.sent.withLock { sent in defer { sent.removeAll() }; return sent } + [0xFF]
            }
            return order
        }
        let first = try run()
        #expect(first == (try run()))
        #expect(first.filter { $0 != 0xFF }.count == 20)
        #expect(first.filter { $0 != 0xFF } != Array(0..<20))  // the jitter reordered them
    }
}
