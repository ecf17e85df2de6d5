import Dispatch
import Foundation
import Synchronization

/// Long writes (`lab.generate`, `tenancy.change`, `firmware.update`'s transfers) run on threads of
/// their own, below the event loops' CPU priority.
///
/// They are CPU-bound for seconds on end; at the same priority they take their full share of the
/// cores from the event loops, and a HAN read waits for the scheduler's next turn (tens of ms on a
/// busy machine). The nice value is the setting `bulkThreadNice` (default 5): at 10, a
/// `tenancy.change` that took 7 s beside one busy process took 52 s beside three, every other
/// process going first. A thread's nice value can only be raised without privileges, never lowered
/// again, so each call gets fresh threads rather than lowering a pool's.
enum BulkWork {
    /// Runs `body(lane)` for every lane, each on a bulk thread at `nice`, and returns when all are done.
    static func run(lanes: Int, nice: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let group = DispatchGroup()
        for lane in 0..<lanes {
            group.enter()
            Thread {
                if nice > 0 { lowerPriority(to: Int32(nice)) }
                body(lane)
                group.leave()
            }.start()
        }
        group.wait()
    }

    /// Runs `body` on a bulk thread and returns what it returned or throws what it threw.
    static func run<T: Sendable>(nice: Int, _ body: @escaping @Sendable () throws -> T) throws -> T {
        let outcome = Slots<Result<T, any Error>>(count: 1)
        run(lanes: 1, nice: nice) { _ in outcome.set(0, Result { try body() }) }
        // `run` returns only after the lane stored its result.
        return try (outcome.values.first ?? nil)?.get() ?? { throw BulkWorkNotRun() }()
    }

    struct BulkWorkNotRun: Error {}

    /// Results filled in by lanes, one slot each.
    final class Slots<T: Sendable>: Sendable {
        private let slots: Mutex<[T?]>
        init(count: Int) { slots = Mutex([T?](repeating: nil, count: count)) }
        func set(_ index: Int, _ value: T) { slots.withLock { $0[index] = value } }
        var values: [T?] { slots.withLock { $0 } }
    }

    /// The calling thread's nice value (on Linux, per thread). Failing (a seccomp filter that refuses
    /// setpriority) leaves it as it was and returns the errno.
    @discardableResult
    private static func lowerPriority(to nice: Int32) -> Int32? {
        setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(linuxThreadID()), nice) == 0 ? nil : errno
    }

    /// Whether bulk threads get their nice value here, for the ready log line: "5", or the refusal
    /// ("refused: errno 1") when the sandbox forbids it and long writes run at the loops' priority.
    static func probe(nice: Int) -> String {
        guard nice > 0 else { return "0" }
        let outcome = Slots<Int32?>(count: 1)
        let group = DispatchGroup()
        group.enter()
        Thread {
            outcome.set(0, lowerPriority(to: Int32(nice)))
            group.leave()
        }.start()
        group.wait()
        let slot: Int32?? = outcome.values.first ?? nil
        guard let refused = slot ?? nil else { return String(nice) }
        return "refused: errno \(refused)"
    }
}

// glibc's gettid(2) wrapper; <unistd.h> declares it only under _GNU_SOURCE, which Swift's Glibc lacks.
@_silgen_name("gettid")
private func linuxThreadID() -> Int32
