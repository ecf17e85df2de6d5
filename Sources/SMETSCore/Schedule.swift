/// Work due at a virtual time: a pending Change of Tenancy, a firmware activation, the daily rollover.
public struct ScheduledJob: Hashable, Sendable {
    public var id: Int64
    public var due: Timestamp
    public var kind: String
    /// The job's own data, opaque to the schedule (JSON in the store).
    public var payload: String

    public init(id: Int64, due: Timestamp, kind: String, payload: String) {
        self.id = id; self.due = due; self.kind = kind; self.payload = payload
    }
}

/// Every scheduled job of the daemon in one min-heap, so one timer (armed for `next`) serves them all.
public struct Schedule: Sendable {
    private var heap: [ScheduledJob] = []

    public init(_ jobs: [ScheduledJob] = []) { for job in jobs { insert(job) } }

    public var count: Int { heap.count }
    public var next: ScheduledJob? { heap.first }

    public mutating func insert(_ job: ScheduledJob) {
        heap.append(job)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns every job due at or before `now`, earliest first (ties by id).
    public mutating func popDue(at now: Timestamp) -> [ScheduledJob] {
        var due: [ScheduledJob] = []
        while let first = heap.first, first.due <= now { due.append(popFirst()) }
        return due
    }

    public mutating func remove(id: Int64) {
        let kept = heap.filter { $0.id != id }
        heap = []
        for job in kept { insert(job) }
    }

    private mutating func popFirst() -> ScheduledJob {
        let first = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < heap.count, precedes(heap[left], heap[smallest]) { smallest = left }
                if right < heap.count, precedes(heap[right], heap[smallest]) { smallest = right }
                if smallest == parent { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return first
    }

    private func precedes(_ a: ScheduledJob, _ b: ScheduledJob) -> Bool { a.due == b.due ? a.id < b.id : a.due < b.due }
}
