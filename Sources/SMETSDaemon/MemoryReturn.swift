import CMalloc
import Synchronization

/// Gives the C heap back to the system once a lot of it has been freed.
///
/// glibc keeps freed memory in its arenas (one per event loop thread, roughly) and returns it only
/// on `malloc_trim`. What frees a lot at once is the end of a burst: thousands of HAN links
/// closing, a stalled subscriber's event backlog going with its connection, a large response
/// written. Checked every few seconds off the event loops: when the heap's free bytes have grown by
/// `threshold` since the last trim, trim. (After a trim the free chunks stay counted as free, their
/// pages given back, so the growth since then is what a new trim could return.)
final class MemoryReturn: Sendable {
    /// Free heap growth that makes a trim worth its cost (it walks every arena: milliseconds).
    static let threshold = 4 << 20

    private let freeAfterLastTrim = Mutex<Int>(0)

    init() { freeAfterLastTrim.withLock { $0 = Self.freeHeapBytes() } }

    /// Free bytes in every arena's free lists (mmapped chunks are unmapped when freed: not counted).
    static func freeHeapBytes() -> Int { Int(mallinfo2().fordblks) }

    /// Trims when enough was freed since the last trim; returns whether it did.
    @discardableResult
    func check() -> Bool {
        freeAfterLastTrim.withLock { baseline in
            let free = Self.freeHeapBytes()
            // Memory taken again since the last trim lowers the baseline, so a later free counts in full.
            guard free - baseline >= Self.threshold else { baseline = min(baseline, free); return false }
            malloc_trim(0)
            baseline = Self.freeHeapBytes()
            return true
        }
    }
}
