#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystemd

/// A listening socket handed over by the service manager (socket activation).
///
/// The receiver owns `fd`: it is already listening, has `FD_CLOEXEC` set, and must be closed by
/// the receiver when no longer served.
public struct ActivatedSocket: Sendable, Hashable {
    /// The file descriptor, 3 or above.
    public var fd: Int32
    /// The name given by the socket unit's `FileDescriptorName=` (defaults to the socket unit's
    /// name, e.g. `smetsd.socket`); `unknown` when the manager passed no names.
    public var name: String
    /// The filesystem path the socket is bound to, for an `AF_UNIX` path socket; `@name` for an
    /// abstract socket; `nil` for other families or when it cannot be read.
    public var path: String?

    /// Creates a value describing an activated socket.
    public init(fd: Int32, name: String, path: String?) {
        self.fd = fd
        self.name = name
        self.path = path
    }

    /// The last component of ``path`` (e.g. `control.sock`), or `nil` without a path.
    public var pathBasename: String? {
        guard let path, !path.hasPrefix("@") else { return nil }
        return path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init)
    }

    /// Whether this socket serves `role`: its ``name`` equals `role`, or its path's basename
    /// equals `role` or `role.sock`. So `matches("control")` accepts an fd named `control` or one
    /// bound at `/run/smetsd/control.sock` whatever its name.
    public func matches(_ role: String) -> Bool {
        if name == role { return true }
        guard let base = pathBasename else { return false }
        return base == role || base == role + ".sock"
    }
}

/// Socket activation: receiving the listening sockets that systemd bound on the daemon's behalf
/// (`sd_listen_fds_with_names(3)`).
public enum SocketActivation {
    /// The first passed file descriptor (`SD_LISTEN_FDS_START`).
    public static let firstDescriptor: Int32 = 3

    /// Takes the sockets passed by the service manager, in order, and unsets `LISTEN_PID`,
    /// `LISTEN_FDS` and `LISTEN_FDNAMES` so that children do not inherit them.
    ///
    /// Call it once, early, before other code opens descriptors. Returns an empty array when the
    /// process was not socket-activated (or the variables were meant for another process). The
    /// caller owns the returned descriptors.
    public static func takeListenFDs() -> [ActivatedSocket] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
        let count = sd_listen_fds_with_names(1, &names)
        guard count > 0 else { return [] }
        var parsed: [String] = []
        if let names {
            for index in 0..<Int(count) {
                if let cName = names[index] {
                    parsed.append(String(cString: cName))
                    free(cName)
                } else {
                    parsed.append("unknown")
                }
            }
            free(names)
        }
        let padded = parsed.count == Int(count) ? parsed : parseFDNames(nil, count: Int(count))
        return sockets(names: padded, startingAt: firstDescriptor)
    }

    /// Describes the descriptors `start`, `start+1`, ... named by `names`, reading each one's
    /// bound path with `getsockname(2)`.
    public static func sockets(names: [String], startingAt start: Int32) -> [ActivatedSocket] {
        names.enumerated().map { offset, name in
            let fd = start + Int32(offset)
            return ActivatedSocket(fd: fd, name: name, path: boundPath(of: fd))
        }
    }

    /// The first socket in `sockets` that ``ActivatedSocket/matches(_:)`` `role`.
    public static func socket(for role: String, in sockets: [ActivatedSocket]) -> ActivatedSocket? {
        sockets.first { $0.name == role } ?? sockets.first { $0.matches(role) }
    }

    /// Parses `LISTEN_FDNAMES` (colon-separated names, one per descriptor) for `count`
    /// descriptors: missing or empty names become `unknown`, surplus names are dropped, and a
    /// missing variable names every descriptor `unknown`, as libsystemd does.
    public static func parseFDNames(_ text: String?, count: Int) -> [String] {
        guard count > 0 else { return [] }
        let given = text.map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) } ?? []
        return (0..<count).map { index in
            index < given.count && !given[index].isEmpty ? given[index] : "unknown"
        }
    }

    /// The path a Unix socket is bound to: the filesystem path, `@name` for an abstract socket,
    /// or `nil` for an unbound or non-`AF_UNIX` socket (or a descriptor that is not a socket).
    public static func boundPath(of fd: Int32) -> String? {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let result = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0, address.sun_family == sa_family_t(AF_UNIX) else { return nil }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        let pathLength = Int(length) - pathOffset
        guard pathLength > 0 else { return nil }
        let bytes = withUnsafeBytes(of: &address.sun_path) { raw in
            Array(raw.prefix(min(pathLength, raw.count)))
        }
        if bytes.first == 0 {
            // Abstract namespace: the name is every byte after the leading NUL.
            return "@" + String(decoding: bytes.dropFirst(), as: UTF8.self)
        }
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        guard end > 0 else { return nil }
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}
