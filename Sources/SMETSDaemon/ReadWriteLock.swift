#if canImport(Glibc)
import Glibc
#endif

/// A value behind a reader-writer lock: readers share it, a writer has it alone.
///
/// For the engine's state, which every HAN frame reads on the event loops and a firmware push reads
/// for every block on its own threads, while writers only swap a committed draft in. Under a mutex,
/// readers queued on each other, and one the scheduler preempted while holding the lock held every
/// other reader up with it; here a reader waits only for a writer's swap. glibc's default prefers
/// readers; the writers' sections are O(1), and a writer waits only for the readers in flight.
final class ReadWriteLock<Value: Sendable>: @unchecked Sendable {
    // Both on the heap: a pthread lock must not move, and readers borrow the value in place.
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    private let value: UnsafeMutablePointer<Value>

    init(_ initial: Value) {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
        value = .allocate(capacity: 1)
        value.initialize(to: initial)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Reads under the shared lock: other readers go on meanwhile. `body` must only read.
    ///
    /// The value is handed over in place (`inout`), because a borrowed parameter made the compiler
    /// copy the whole value out of the pointer first: for the engine's state, a retain and a
    /// release of every map it holds, some 1,400 instructions per HAN round trip (callgrind).
    func read<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(&value.pointee)
    }

    /// Reads or changes under the exclusive lock.
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(&value.pointee)
    }
}
