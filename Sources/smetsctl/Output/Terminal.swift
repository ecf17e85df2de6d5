#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where output goes, and whether a person is watching it.
enum Terminal {
    static var standardOutputIsTTY: Bool { isatty(STDOUT_FILENO) == 1 }
    static var standardErrorIsTTY: Bool { isatty(STDERR_FILENO) == 1 }

    /// Bold and other ANSI styling: only on a terminal, and not when `NO_COLOR` is set or `TERM=dumb`.
    static var stylesStandardOutput: Bool {
        standardOutputIsTTY && getenv("NO_COLOR") == nil && getenv("TERM").map { String(cString: $0) } != "dumb"
    }

    /// Writes `text` to standard output at once (not buffered), so pipes see each line as it comes.
    static func write(_ text: String) {
        writeAll(STDOUT_FILENO, text)
    }

    /// Writes `text` to standard error.
    static func writeError(_ text: String) {
        writeAll(STDERR_FILENO, text)
    }

    private static func writeAll(_ descriptor: Int32, _ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = systemWrite(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}

private func systemWrite(_ descriptor: Int32, _ pointer: UnsafePointer<UInt8>, _ count: Int) -> Int {
    write(descriptor, pointer, count)
}

/// Ends the process with `status` (the C `exit`, which ArgumentParser's `exit(withError:)` shadows).
func terminate(_ status: Int32) -> Never {
    exit(status)
}
