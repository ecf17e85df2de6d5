import Dispatch
import Foundation
@testable import SMETSDaemon
import Synchronization
import Testing

/// The engine's state lock and the bulk threads long writes run on.
struct LockingTests {
    @Test func readersShareTheStateLockAndAWriterWaitsForThemToLeave() {
        let lock = ReadWriteLock(0)
        let holding = DispatchSemaphore(value: 0), leave = DispatchSemaphore(value: 0), wrote = DispatchSemaphore(value: 0)
        Thread { lock.read { _ in holding.signal(); leave.wait() } }.start()
        holding.wait()
        // A second reader gets in while the first still holds the lock (on a thread, so that an
        // exclusive lock fails the test rather than hanging it).
        let read = DispatchSemaphore(value: 0)
        Thread { _ = lock.read { $0 }; read.signal() }.start()
        #expect(read.wait(timeout: .now() + .seconds(10)) == .success, "readers share the lock")
        Thread { lock.withLock { $0 = 1 }; wrote.signal() }.start()
        #expect(wrote.wait(timeout: .now() + .milliseconds(200)) == .timedOut, "a writer waits for the reader in flight")
        leave.signal()
        #expect(wrote.wait(timeout: .now() + .seconds(10)) == .success)
        #expect(lock.read { $0 } == 1)
    }

    @Test func bulkWorkRunsEveryLaneOnAThreadOfItsOwnBelowTheCallersPriority() throws {
        let caller = pthread_self()
        let lanes = BulkWork.Slots<(other: Bool, nice: Int?)>(count: 3)
        BulkWork.run(lanes: 3, nice: 7) { lane in lanes.set(lane, (pthread_equal(pthread_self(), caller) == 0, Self.threadNice())) }
        for lane in lanes.values {
            #expect(lane?.other == true)
            #expect((lane?.nice ?? -100) >= 7, "a bulk thread runs at the nice value asked for, or lower priority")
        }
        #expect(try BulkWork.run(nice: 0) { Self.threadNice() } == Self.threadNice(), "nice 0 leaves the priority as it was")
        #expect(BulkWork.probe(nice: 3) == "3")
        #expect(BulkWork.probe(nice: 0) == "0")
        #expect(try BulkWork.run(nice: 5) { 42 } == 42)
        struct Refused: Error {}
        #expect(throws: Refused.self) { try BulkWork.run(nice: 5) { () throws -> Int in throw Refused() } }
    }

    /// The calling thread's nice value, field 19 of /proc/thread-self/stat (the 17th after the name).
    static func threadNice() -> Int? {
        guard let stat = try? String(contentsOfFile: "/proc/thread-self/stat", encoding: .utf8),
              let name = stat.range(of: ")", options: .backwards) else { return nil }
        let fields = stat[name.upperBound...].split(separator: " ")
        return fields.count > 16 ? Int(fields[16]) : nil
    }
}
