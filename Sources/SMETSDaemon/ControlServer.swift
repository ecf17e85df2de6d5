import Logging
import NIOCore
import NIOPosix
import SMETSCore
import SMETSRPC
import Synchronization

/// The peer of one control connection, as SO_PEERCRED reports it.
public struct PeerCredentials: Sendable, Hashable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
}

/// One client of the control socket.
public final class ControlConnection: Sendable {
    public let channel: any Channel
    let peerBox = Mutex<PeerCredentials?>(nil)
    let subscription = Mutex<Int?>(nil)
    /// Events not sent because the client was not reading; reported before the next one that is.
    let droppedEvents = Mutex<Int>(0)
    /// Bytes handed to the channel and not yet written to the socket. Counted here, not read from
    /// the channel's writability: events are pushed from many threads, and the channel learns of a
    /// write only when its event loop runs it, so a burst would pass any watermark before it flips.
    private let unwritten = Atomic<Int>(0)
    /// Most unwritten event bytes a client may hold (`maxEventBacklogBytes`); responses always go.
    let backlogLimit: Int
    /// What a queued write costs beside its buffer: NIO's pending-write entry, the promise and its
    /// callback (measured: ten stalled subscribers held twice their counted payload without it).
    static let perWriteOverhead = 512

    init(channel: any Channel, backlogLimit: Int) {
        self.channel = channel
        self.backlogLimit = backlogLimit
    }

    /// Who is calling; read once when the connection opens, before its first request runs.
    public var peer: PeerCredentials? { peerBox.withLock { $0 } }

    var unwrittenBytes: Int { unwritten.load(ordering: .relaxed) }

    /// Pushes an event, unless the client has stopped reading (its backlog is full): then it is
    /// counted, and the count goes out as an `events.lost` notification once the backlog drains.
    func push(_ event: JSONRPCMessage) {
        let bytes = event.serializedLineBytes()
        guard unwritten.load(ordering: .relaxed) + bytes.count + Self.perWriteOverhead <= backlogLimit else {
            droppedEvents.withLock { $0 += 1 }
            return
        }
        let lost = droppedEvents.withLock { count in defer { count = 0 }; return count }
        if lost > 0 { send(.notification(method: "events.lost", params: ["count": .int(Int64(lost))])) }
        write(bytes)
    }

    func send(_ message: JSONRPCMessage) { write(message.serializedLineBytes()) }

    private func write(_ bytes: [UInt8]) {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        let count = buffer.capacity + Self.perWriteOverhead  // what the backlog costs in memory, not only its payload
        unwritten.add(count, ordering: .relaxed)
        // Completes when the bytes reach the socket, or fail with the channel: either way they are gone.
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenComplete { _ in self.unwritten.subtract(count, ordering: .relaxed) }
        channel.writeAndFlush(buffer, promise: written)
    }
}

/// Reads JSON-RPC lines, runs each request on the blocking pool (the engine fsyncs), and writes the
/// responses in request order. Notifications (events) are written as they happen.
final class ControlChannelHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let router: ControlRouter
    let pool: NIOThreadPool
    let counter: ConnectionCounter
    private var connection: ControlConnection?
    private var tail: EventLoopFuture<Void>?

    let eventBacklogLimit: Int

    init(router: ControlRouter, pool: NIOThreadPool, counter: ConnectionCounter, eventBacklogLimit: Int) {
        self.router = router
        self.pool = pool
        self.counter = counter
        self.eventBacklogLimit = eventBacklogLimit
    }

    func channelActive(context: ChannelHandlerContext) {
        let connection = ControlConnection(channel: context.channel, backlogLimit: eventBacklogLimit)
        self.connection = connection
        tail = PeerCredentialReader.read(channel: context.channel).map { peer in
            connection.peerBox.withLock { $0 = peer }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let connection { router.disconnected(connection) }
        counter.release(.control)
        connection = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        guard let connection, let tail else { return }
        let bytes = Array(line.readableBytesView)
        let router = self.router, pool = self.pool
        let eventLoop = context.eventLoop
        self.tail = tail.flatMap {
            pool.runIfActive(eventLoop: eventLoop) { router.respond(to: bytes, connection: connection) }
        }.map { response in
            if let response { connection.send(response) }
        }.recover { error in
            connection.send(.errorResponse(.internalError("\(error)")))
        }
    }

    /// A client that stops reading stops being read (its event stream is the one that can grow).
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        context.channel.setOption(.autoRead, value: context.channel.isWritable).whenFailure { _ in }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let tooLong = error as? LineFrameDecoder.LineTooLong, let connection {
            connection.send(.errorResponse(.invalidRequest("line longer than \(tooLong.limit) bytes (maxControlLineBytes)")))
        }
        context.close(promise: nil)
    }
}

/// Counts open connections per kind against the configured limits.
public final class ConnectionCounter: Sendable {
    public enum Kind: Sendable { case control, han }
    private let counts = Mutex<(control: Int, han: Int)>((0, 0))

    init() {}

    /// Takes a slot; false when the kind is at its limit in `limits` (the settings the new
    /// connection is accepted under). Lowering a limit closes nothing: open connections stay and
    /// new ones are refused until the count is below it.
    func acquire(_ kind: Kind, under limits: Settings) -> Bool {
        counts.withLock { counts in
            switch kind {
            case .control:
                guard counts.control < limits.maxControlConnections else { return false }
                counts.control += 1
            case .han:
                guard counts.han < limits.maxHANConnections else { return false }
                counts.han += 1
            }
            return true
        }
    }

    func release(_ kind: Kind) {
        counts.withLock { counts in
            switch kind {
            case .control: counts.control = max(0, counts.control - 1)
            case .han: counts.han = max(0, counts.han - 1)
            }
        }
    }

    public var current: (control: Int, han: Int) { counts.withLock { $0 } }
}

#if canImport(Glibc)
import Glibc

enum PeerCredentialReader {
    /// SO_PEERCRED of a connected Unix socket: who is calling, as the kernel vouches.
    static func read(channel: any Channel) -> EventLoopFuture<PeerCredentials?> {
        guard let provider = channel as? any SocketOptionProvider else { return channel.eventLoop.makeSucceededFuture(nil) }
        let future: EventLoopFuture<KernelPeerCredentials> = provider.unsafeGetSocketOption(level: .socket, name: .init(rawValue: soPeerCred))
        return future.map { Optional(PeerCredentials(pid: $0.pid, uid: $0.uid, gid: $0.gid)) }.recover { _ -> PeerCredentials? in nil }
    }

    /// Linux's `struct ucred`, which Glibc hides behind _GNU_SOURCE: same fields, same layout.
    struct KernelPeerCredentials {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// SO_PEERCRED on Linux (asm-generic/socket.h), hidden from Swift with `struct ucred`.
    static let soPeerCred: Int32 = 17
}
#endif
