import Synchronization

/// Gives the C heap back to the system after many connections closed.
///
/// Each HAN link holds buffers and a pipeline on an event loop thread; when thousands close, glibc
/// keeps the freed memory in its per-thread arenas, so the RSS stays at its peak (the soak showed
/// 38 MiB before 2,000 links, 96 MiB after they all closed). `malloc_trim(0)` returns the free pages of
/// every arena. It runs only when the connection count fell well below its recent peak, not per close.
final class MemoryReturn: Sendable {
    /// Connections that must have closed since the peak before a trim is worth its cost.
    static let minimumDrop = 256
    private let peak = Mutex<Int>(0)

    /// Called every few seconds with the connections open now; trims when at most half the peak remain.
    func check(connections: Int) {
        let trim = peak.withLock { peak -> Bool in
            peak = max(peak, connections)
            guard peak - connections >= Self.minimumDrop, connections <= peak / 2 else { return false }
            peak = connections
            return true
        }
        if trim { _ = glibcMallocTrim(0) }
    }
}

// <malloc.h> is not part of Swift's Glibc module; the symbol is glibc's own.
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
