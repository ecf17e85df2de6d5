import Logging
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What a listener does when accept(2) fails because the process or the system is out of file
/// descriptors (EMFILE, ENFILE) or memory (ENOBUFS, ENOMEM).
///
/// NIO's plain `bind` keeps the listener open after such an error and, the socket still being
/// readable, would call accept again at once: a spin at 100% CPU until a descriptor frees. Instead the
/// listener stops reading for a while (50 ms, doubling to 1 s while the error lasts): the callers wait
/// in the kernel's backlog and are accepted once descriptors free. One warning is logged per episode
/// (`event=accept.backoff`) and one line when accepting works again (`event=accept.resumed`).
final class AcceptBackoff: Sendable {
    let listener: String
    let logger: Logger
    private let state = Mutex<(episode: Bool, delayMillis: Int64, refusals: Int)>((false, 0, 0))

    init(listener: String, logger: Logger) {
        self.listener = listener
        self.logger = logger
    }

    /// The handler for a server channel's pipeline (added by `serverChannelInitializer`).
    func handler() -> AcceptPauseHandler { AcceptPauseHandler(backoff: self) }

    /// A handler behind the backoff that notes the first accepted connection after an episode.
    func resumeWatcher() -> AcceptResumeWatcher { AcceptResumeWatcher(backoff: self) }

    func backoff(after error: IOError) -> TimeAmount? {
        let (first, delay) = state.withLock { state -> (Bool, Int64) in
            let first = !state.episode
            state.episode = true
            state.refusals += 1
            state.delayMillis = first ? 50 : min(1000, state.delayMillis * 2)
            return (first, state.delayMillis)
        }
        if first {
            logger.warning("cannot accept a connection: out of file descriptors or memory; backing off, callers wait in the backlog", metadata: [
                "event": "accept.backoff", "listener": .string(listener), "error": .string("\(error)"),
                "open_files_limit": .stringConvertible(Self.openFilesLimit),
            ])
        }
        return .milliseconds(delay)
    }

    func accepted() {
        guard let refusals = state.withLock({ state -> Int? in
            guard state.episode else { return nil }
            defer { state = (false, 0, 0) }
            return state.refusals
        }) else { return }
        logger.notice("accepting connections again", metadata: [
            "event": "accept.resumed", "listener": .string(listener), "failed_accepts": .stringConvertible(refusals),
        ])
    }

    /// RLIMIT_NOFILE's soft limit (what `LimitNOFILE=` sets); sysconf reads it on Linux.
    static var openFilesLimit: Int { sysconf(Int32(_SC_OPEN_MAX)) }
}

/// Stops a listener reading for the backoff's delay after an accept error, by turning autoRead off.
///
/// NIO's own AcceptBackoffHandler only withholds the next `read()`: after a failed accept the server
/// channel's read stays pending, so its socket stays registered for readability and epoll wakes the
/// loop again at once (measured: ~14,000 failed accept4 calls a second, 0.7 of a core). Turning
/// autoRead off unregisters the socket; turning it back on after the delay registers it again.
final class AcceptPauseHandler: ChannelInboundHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel
    private let backoff: AcceptBackoff
    private var paused = false

    init(backoff: AcceptBackoff) { self.backoff = backoff }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let ioError = error as? IOError, Self.isOutOfResources(ioError) else {
            context.fireErrorCaught(error)
            return
        }
        guard !paused, let delay = backoff.backoff(after: ioError) else { return }
        paused = true
        let channel = context.channel
        channel.setOption(.autoRead, value: false).whenFailure { _ in }
        let resume = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: delay) {
            resume.value.paused = false
            channel.setOption(.autoRead, value: true).whenFailure { _ in }
        }
    }

    /// EMFILE, ENFILE, ENOBUFS, ENOMEM: the errors a wait can cure; others go on down the pipeline.
    static func isOutOfResources(_ error: IOError) -> Bool {
        [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errnoCode)
    }
}

/// Sees each accepted child channel go by on the server channel, to end a backoff episode.
final class AcceptResumeWatcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = any Channel
    let backoff: AcceptBackoff

    init(backoff: AcceptBackoff) { self.backoff = backoff }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        backoff.accepted()
        context.fireChannelRead(data)
    }
}

extension ServerBootstrap {
    /// Backs off accept on EMFILE / ENFILE instead of spinning, logging each episode (see AcceptBackoff).
    func backingOffAccept(listener: String, logger: Logger) -> ServerBootstrap {
        let backoff = AcceptBackoff(listener: listener, logger: logger)
        return serverChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(backoff.handler())
                try channel.pipeline.syncOperations.addHandler(backoff.resumeWatcher())
            }
        }
    }
}

/// The open-files limit against the connections the settings allow.
enum FileDescriptorBudget {
    /// Descriptors beyond the connections: listeners, SQLite's files, epoll and event fds, the journal.
    static let margin = 128

    static func needed(by settings: Settings) -> Int {
        settings.maxHANConnections + settings.maxControlConnections + settings.maxPerDeviceSockets + margin
    }

    /// Raises the soft limit toward the hard one when the settings need more (not possible under the
    /// unit's system call filter, which is why the unit sets LimitNOFILE=); logs when it still falls short.
    static func ensure(for settings: Settings, logger: Logger) {
        let needed = needed(by: settings)
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        if limit.rlim_cur < rlim_t(needed) {
            var raised = limit
            raised.rlim_cur = min(limit.rlim_max, rlim_t(needed))
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        guard limit.rlim_cur < rlim_t(needed) else { return }
        logger.warning("the open-files limit is below what the connection limits need; past it, accepts back off (accept.backoff)", metadata: [
            "event": "daemon.fdLimit", "open_files_limit": .stringConvertible(limit.rlim_cur), "needed": .stringConvertible(needed),
            "fix": "raise LimitNOFILE= (ulimit -n) or lower maxHANConnections / maxControlConnections",
        ])
    }
}
