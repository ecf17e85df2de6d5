#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SMETSRPC

/// A blocking JSON-RPC 2.0 client of smetsd's control socket.
///
/// One connection, one request at a time: ``call(_:params:)`` sends a request and waits for its
/// response; notifications (events) that arrive meanwhile are queued for ``nextNotification(timeout:)``.
/// Safe to share between threads: calls are serialised, so a thread waiting for a notification
/// holds up calls from others until one arrives or its timeout passes.
public final class ControlClient: Sendable {
    /// The longest line accepted from the daemon, in bytes.
    public static let maxLineLength = 8 << 20

    /// The socket this client is connected to.
    public let socketPath: String
    /// How long ``call(_:params:)`` waits for its response.
    public let timeout: Duration
    private let connection: Connection

    /// Connects to the control socket at `socketPath`.
    /// - Parameters:
    ///   - socketPath: the path of smetsd's `control.sock`; see ``defaultSocketPath()``.
    ///   - timeout: how long each call may take, from sending the request to reading the response.
    /// - Throws: ``ControlClientError/daemonNotRunning(path:detail:)`` when nothing listens there,
    ///   ``ControlClientError/io(_:)`` for other failures.
    public init(socketPath: String, timeout: Duration = .seconds(30)) throws(ControlClientError) {
        self.socketPath = socketPath
        self.timeout = timeout
        self.connection = Connection(descriptor: try Self.connect(to: socketPath, timeout: timeout))
    }

    deinit { connection.close() }

    /// Calls `method` and returns its result.
    /// - Throws: ``ControlClientError/remote(_:)`` with the daemon's error; ``ControlClientError/timeout``
    ///   when no response came within ``timeout``; ``ControlClientError/io(_:)`` or
    ///   ``ControlClientError/protocolError(_:)`` when the connection failed.
    public func call(_ method: String, params: JSONValue? = nil) throws(ControlClientError) -> JSONValue {
        try connection.call(method, params: params, timeout: timeout)
    }

    /// The next notification from the daemon (such as an `event` after `events.subscribe`).
    /// - Parameter timeout: how long to wait; nil waits until one arrives or the connection ends.
    /// - Returns: the notification, or nil when none arrived within `timeout`.
    /// - Throws: ``ControlClientError/io(_:)`` when the daemon closed the connection.
    public func nextNotification(timeout: Duration? = nil) throws(ControlClientError) -> (method: String, params: JSONValue?)? {
        try connection.nextNotification(timeout: timeout)
    }

    /// Closes the connection; later calls throw. Closing twice is harmless.
    public func close() { connection.close() }

    // MARK: Socket discovery

    /// Where smetsd's control socket is, for a client that was not told:
    /// `$SMETSD_SOCKET`; else `$RUNTIME_DIRECTORY/control.sock` (the first directory, as systemd
    /// sets it); else `/run/smetsd/control.sock` when it exists; else `devices/.run/control.sock`
    /// relative to the current directory, where `swift run smetsd` puts it.
    public static func defaultSocketPath() -> String {
        defaultSocketPath(
            environment: { name in getenv(name).map { String(cString: $0) } },
            fileExists: { access($0, F_OK) == 0 })
    }

    /// ``defaultSocketPath()`` with the environment and file system supplied, for tests.
    public static func defaultSocketPath(
        environment: (String) -> String?, fileExists: (String) -> Bool
    ) -> String {
        if let explicit = environment("SMETSD_SOCKET"), !explicit.isEmpty { return explicit }
        if let runtime = environment("RUNTIME_DIRECTORY"),
           let first = runtime.split(separator: ":").first, !first.isEmpty {
            return first.hasSuffix("/") ? "\(first)control.sock" : "\(first)/control.sock"
        }
        let system = "/run/smetsd/control.sock"
        if fileExists(system) { return system }
        return "devices/.run/control.sock"
    }

    // MARK: Connecting

    private static func connect(to path: String, timeout: Duration) throws(ControlClientError) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !pathBytes.isEmpty, pathBytes.count < capacity else {
            throw .io("socket path must be 1 to \(capacity - 1) bytes long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }

        #if os(Linux)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw .io("socket: \(errorString(errno))") }
        #if !os(Linux)
        var on: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, socklen_t(MemoryLayout<Int32>.size))
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        #endif

        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                systemConnect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if result != 0 {
            var code = errno
            if code == EINTR || code == EINPROGRESS {
                // The connection goes on in the background: wait for it, then ask how it went.
                code = awaitConnection(fd, deadline: ContinuousClock.now.advanced(by: timeout))
            }
            if code != 0 {
                _ = closeDescriptor(fd)
                switch code {
                case ENOENT, ECONNREFUSED:
                    throw .daemonNotRunning(path: path, detail: errorString(code))
                case EACCES, EPERM:
                    throw .io("cannot connect to \(path): \(errorString(code)); the control socket is for smetsd's group")
                case ETIMEDOUT:
                    throw .timeout
                default:
                    throw .io("cannot connect to \(path): \(errorString(code))")
                }
            }
        }
        return fd
    }

    /// Waits for a connect that was interrupted; returns 0 or the errno it failed with.
    private static func awaitConnection(_ fd: Int32, deadline: ContinuousClock.Instant) -> Int32 {
        while true {
            let milliseconds = pollTimeout(until: deadline)
            if milliseconds == 0 { return ETIMEDOUT }
            var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&descriptor, 1, milliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if ready == 0 { continue }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return errno }
            return error
        }
    }
}

// MARK: - The connection

/// The socket and what has been read from it, behind a lock.
private final class Connection: @unchecked Sendable {
    private let mutex = Mutex()
    private var descriptor: Int32
    private var nextID: Int64 = 1
    private var lines = LineBuffer(maxLineLength: ControlClient.maxLineLength)
    private var notifications: [(method: String, params: JSONValue?)] = []
    private var scratch = [UInt8](repeating: 0, count: 64 << 10)

    init(descriptor: Int32) { self.descriptor = descriptor }

    func close() {
        mutex.lock()
        defer { mutex.unlock() }
        closeLocked()
    }

    private func closeLocked() {
        guard descriptor >= 0 else { return }
        _ = closeDescriptor(descriptor)
        descriptor = -1
    }

    func call(_ method: String, params: JSONValue?, timeout: Duration) throws(ControlClientError) -> JSONValue {
        mutex.lock()
        defer { mutex.unlock() }
        guard descriptor >= 0 else { throw .io("the connection to smetsd is closed") }
        // The time spent waiting for another thread's call does not count against this one.
        let deadline = ContinuousClock.now.advanced(by: timeout)
        let id = nextID
        nextID += 1
        let request = JSONRPCMessage.request(id: .number(id), method: method, params: params)
        try writeAll(request.serializedLineBytes(), deadline: deadline)
        while true {
            switch try readMessage(deadline: deadline) {
            case .response(let answered, let result) where answered == .number(id) || answered == nil:
                switch result {
                case .success(let value): return value
                case .failure(let error): throw .remote(error)
                }
            case .response:
                continue // the answer to an earlier call that timed out
            case .request(nil, let method, let params), .notification(let method, let params):
                notifications.append((method, params))
            case .request:
                continue // the daemon does not call its clients; nothing to answer
            }
        }
    }

    func nextNotification(timeout: Duration?) throws(ControlClientError) -> (method: String, params: JSONValue?)? {
        mutex.lock()
        defer { mutex.unlock() }
        let deadline = timeout.map { ContinuousClock.now.advanced(by: $0) }
        if !notifications.isEmpty { return notifications.removeFirst() }
        guard descriptor >= 0 else { throw .io("the connection to smetsd is closed") }
        while true {
            let message: JSONRPCMessage
            do {
                message = try readMessage(deadline: deadline)
            } catch .timeout {
                return nil
            }
            switch message {
            case .request(nil, let method, let params), .notification(let method, let params):
                return (method, params)
            case .request, .response:
                continue
            }
        }
    }

    // MARK: Reading

    private func readMessage(deadline: ContinuousClock.Instant?) throws(ControlClientError) -> JSONRPCMessage {
        while true {
            let line: ArraySlice<UInt8>?
            do {
                line = try lines.nextLine()
            } catch {
                closeLocked()
                throw .protocolError("smetsd sent a line longer than \(ControlClient.maxLineLength) bytes")
            }
            if let line {
                if line.isEmpty { continue }
                switch JSONRPCMessage.parse(line: line) {
                case .success(let message): return message
                case .failure(let error): throw .protocolError("smetsd sent an invalid line: \(error.message)")
                }
            }
            try fill(deadline: deadline)
        }
    }

    /// Reads what the socket has, waiting for it until `deadline`.
    private func fill(deadline: ContinuousClock.Instant?) throws(ControlClientError) {
        while true {
            try wait(for: Int16(POLLIN), deadline: deadline)
            let count = scratch.withUnsafeMutableBytes { buffer in
                recv(descriptor, buffer.baseAddress, buffer.count, 0)
            }
            if count > 0 {
                scratch.withUnsafeBytes { lines.append(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
                return
            }
            if count == 0 {
                closeLocked()
                throw .io("smetsd closed the connection")
            }
            let code = errno
            if code == EINTR || code == EAGAIN || code == EWOULDBLOCK { continue }
            closeLocked()
            throw .io("reading from smetsd: \(errorString(code))")
        }
    }

    // MARK: Writing

    /// Writes the whole line. A failure after part of it went out closes the connection, since
    /// the daemon would read the rest of the line glued to the next request.
    private func writeAll(_ bytes: [UInt8], deadline: ContinuousClock.Instant) throws(ControlClientError) {
        var offset = 0
        while offset < bytes.count {
            do {
                try wait(for: Int16(POLLOUT), deadline: deadline)
            } catch {
                if offset > 0 { closeLocked() }
                throw error
            }
            let written = bytes.withUnsafeBytes { buffer in
                send(descriptor, buffer.baseAddress! + offset, buffer.count - offset, sendFlags)
            }
            if written >= 0 {
                offset += written
                continue
            }
            let code = errno
            if code == EINTR || code == EAGAIN || code == EWOULDBLOCK { continue }
            closeLocked()
            if code == EPIPE || code == ECONNRESET { throw .io("smetsd closed the connection") }
            throw .io("writing to smetsd: \(errorString(code))")
        }
    }

    /// Waits until the socket is ready for `events` (or has hung up), or throws at `deadline`.
    private func wait(for events: Int16, deadline: ContinuousClock.Instant?) throws(ControlClientError) {
        while true {
            let milliseconds = deadline.map(pollTimeout(until:)) ?? -1
            if milliseconds == 0 { throw .timeout }
            var descriptor = pollfd(fd: self.descriptor, events: events, revents: 0)
            let ready = poll(&descriptor, 1, milliseconds)
            if ready > 0 { return } // readable, writable, or hung up: the next call says which
            if ready < 0 {
                let code = errno
                if code == EINTR { continue }
                throw .io("poll: \(errorString(code))")
            }
        }
    }
}

// MARK: - System helpers

#if os(Linux)
private let sendFlags = Int32(MSG_NOSIGNAL)
#else
private let sendFlags: Int32 = 0
#endif

private func systemConnect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
    connect(fd, address, length)
}

private func closeDescriptor(_ fd: Int32) -> Int32 {
    close(fd)
}

private func errorString(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// Milliseconds from now to `deadline` for `poll`, rounded up; 0 once it has passed.
private func pollTimeout(until deadline: ContinuousClock.Instant) -> Int32 {
    let remaining = ContinuousClock.now.duration(to: deadline)
    guard remaining > .zero else { return 0 }
    let (seconds, attoseconds) = remaining.components
    let milliseconds = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
    return Int32(clamping: max(1, milliseconds))
}

/// A pthread mutex at a stable address.
private final class Mutex: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
}
