import Dispatch

/// A progress line on standard error while a blocking call runs on another thread.
enum Spinner {
    private static let frames = Array("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")

    /// Runs `work` on a background thread, redrawing `message` with a spinner and the elapsed time
    /// every 100 ms until it finishes; then clears the line and returns what `work` returned.
    static func run<T: Sendable>(_ message: String, _ work: @escaping @Sendable () throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        DispatchQueue.global().async {
            box.result = Result { try work() }
            done.signal()
        }
        let started = ContinuousClock.now
        var frame = 0
        while done.wait(timeout: .now() + .milliseconds(100)) == .timedOut {
            let elapsed = seconds(ContinuousClock.now - started)
            Terminal.writeError("\r\u{1B}[2K\(frames[frame % frames.count]) \(message)… \(elapsed)")
            frame += 1
        }
        if frame > 0 { Terminal.writeError("\r\u{1B}[2K") }
        return try box.result!.get()
    }

    /// `12.3s`.
    static func seconds(_ duration: Duration) -> String {
        let (whole, attoseconds) = duration.components
        return "\(whole).\(attoseconds / 100_000_000_000_000_000)s"
    }
}

/// The result handed from the worker to the waiting thread; the semaphore orders the write before the read.
private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}
