#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix

/// Binding a Unix socket path safely: a stale socket file (left by a crashed daemon) is removed, a
/// live one (another daemon answers on it) is an error, and anything that is not a socket is left alone.
enum UnixListener {
    struct SocketInUse: Error, CustomStringConvertible {
        var path: String
        var description: String { "\(path) is in use by a running daemon; stop it first or choose another --runtime folder" }
    }

    struct NotASocket: Error, CustomStringConvertible {
        var path: String
        var description: String { "\(path) exists and is not a socket; remove it or choose another --runtime folder" }
    }

    struct PathTooLong: Error, CustomStringConvertible {
        var path: String
        var description: String { "\(path) is longer than a Unix socket path may be (107 bytes); choose a shorter --runtime folder" }
    }

    static func prepare(path: String) throws {
        guard path.utf8.count < 108 else { throw PathTooLong(path: path) }
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw NotASocket(path: path) }
        if isLive(path: path) { throw SocketInUse(path: path) }
        unlink(path)
    }

    /// Whether something accepts connections on `path`.
    static func isLive(path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return result == 0
    }

    /// Sets the socket file's mode and group from the settings (0660 by default: owner and group may connect).
    static func setMode(path: String, settings: Settings) {
        chmod(path, mode_t(settings.socketModeBits))
        if let name = settings.socketGroup, let group = getgrnam(name) { chown(path, uid_t.max, group.pointee.gr_gid) }
    }
}
