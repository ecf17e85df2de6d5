#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Small POSIX helpers for tests that need real sockets.
enum TestSockets {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// A fresh private directory under /tmp (short, so socket paths fit in `sun_path`).
    static func makeTemporaryDirectory() throws -> String {
        var template = Array("/tmp/sdkit-XXXXXX".utf8CString)
        guard let result = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw Failure(description: "mkdtemp failed: errno \(errno)")
        }
        return String(cString: result)
    }

    /// Removes `directory` and the files directly in it.
    static func removeDirectory(_ directory: String, files: [String]) {
        for file in files { unlink(directory + "/" + file) }
        rmdir(directory)
    }

    /// A socket of `type` bound to `path` (a leading NUL byte makes it abstract).
    static func bindUnix(path: [UInt8], type: Int32) throws -> Int32 {
        let fd = socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket failed: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { throw Failure(description: "path too long") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path)
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + path.count)
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard result == 0 else {
            close(fd)
            throw Failure(description: "bind failed: errno \(errno)")
        }
        return fd
    }

    static func bindUnix(path: String, type: Int32) throws -> Int32 {
        try bindUnix(path: Array(path.utf8), type: type)
    }

    /// One datagram waiting on `fd` (waits up to a second), as text.
    static func receive(from fd: Int32) throws -> String {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 1_000) == 1 else { throw Failure(description: "no datagram arrived") }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        guard count >= 0 else { throw Failure(description: "recv failed: errno \(errno)") }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }

    /// Whether a datagram is waiting on `fd` right now.
    static func hasPending(_ fd: Int32) -> Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&poller, 1, 0) == 1
    }

    /// Everything readable from `fd` now (waits up to a second for the first byte).
    static func readAvailable(_ fd: Int32) throws -> String {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 1_000) == 1 else { throw Failure(description: "nothing to read") }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count >= 0 else { throw Failure(description: "read failed: errno \(errno)") }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }
}
