#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import SMETSCore
import SMETSStore
import Synchronization
import SystemdKit

/// Where the daemon finds its lab and keeps its state and sockets.
public struct DaemonOptions: Sendable {
    public var labDirectory: String
    public var stateDirectory: String?
    public var runtimeDirectory: String?
    public init(labDirectory: String, stateDirectory: String? = nil, runtimeDirectory: String? = nil) {
        self.labDirectory = labDirectory; self.stateDirectory = stateDirectory; self.runtimeDirectory = runtimeDirectory
    }
}

/// The running daemon: loads the lab and the state, listens, serves until SIGTERM, reloads on SIGHUP.
public final class Daemon: Sendable {
    let options: DaemonOptions
    let logger: Logger
    let notifier = SystemdNotifier()

    public init(options: DaemonOptions, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    /// Chooses a directory: the flag, then systemd's, then the default beside the lab.
    static func directory(flag: String?, environment: String, fallback: String) -> String {
        if let flag, !flag.isEmpty { return flag }
        if let value = ProcessInfo.processInfo.environment[environment], !value.isEmpty {
            // systemd may list several (StateDirectory=a b); the first is ours.
            return String(value.split(separator: ":").first ?? Substring(value))
        }
        return fallback
    }

    /// Runs until stopped; returns the exit status.
    public func run() -> Int32 {
        let lab: LabSnapshot
        do {
            lab = try LabLoader.load(directory: options.labDirectory)
        } catch {
            logger.critical("cannot load the devices folder", metadata: ["event": "daemon.failed", "error": .string(error.description)])
            FileHandle.standardError.write(Data("smetsd: \(error.description)\n".utf8))
            return 78  // EX_CONFIG
        }
        let stateDirectory = Self.directory(flag: options.stateDirectory, environment: "STATE_DIRECTORY", fallback: lab.directory + "/.state")
        let runtimeDirectory = Self.directory(flag: options.runtimeDirectory, environment: "RUNTIME_DIRECTORY", fallback: lab.directory + "/.run")
        do {
            try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            // Others reach the sockets only if the socket mode lets them; the folders must not stop them.
            let folderMode = lab.settings.socketModeBits & 0o007 != 0 ? 0o755 : 0o750
            for directory in [runtimeDirectory, runtimeDirectory + "/devices"] {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: folderMode])
                chmod(directory, mode_t(folderMode))
            }
            return try serve(lab: lab, stateDirectory: stateDirectory, runtimeDirectory: runtimeDirectory)
        } catch {
            logger.critical("smetsd failed", metadata: ["event": "daemon.failed", "error": .string("\(error)")])
            FileHandle.standardError.write(Data("smetsd: \(error)\n".utf8))
            return 1
        }
    }

    private func serve(lab: LabSnapshot, stateDirectory: String, runtimeDirectory: String) throws -> Int32 {
        let started = RealTime.now()
        FileDescriptorBudget.ensure(for: lab.settings, logger: logger)
        let store = try StateStore(directory: stateDirectory)
        let events = EventHub(logger: logger)
        let engine = try Engine(store: store, lab: lab, events: events, logger: logger)
        let settings = LiveSettings(lab.settings)
        let counter = ConnectionCounter()
        let info = DaemonInfo(pid: getpid(), statePath: store.path, runtimeDirectory: runtimeDirectory, counter: counter)
        let access = AccessPolicy(configuration: lab.access)
        let duisSigner = try DUISKeys.signer(lab.duisCredentials)
        let outbox = DUISOutbox(settings: lab.settings.duis, events: events, logger: logger, signer: duisSigner)
        let duisService = DUISService(engine: engine, settings: lab.settings.duis, outbox: outbox, logger: logger,
                                      trust: try DUISKeys.trustStore(lab.duisCredentials), signer: duisSigner)
        if !lab.settings.duis.verifies {
            logger.notice("DUIS signatures in lab mode: unsigned and placeholder-signed requests are accepted, roles and counters not checked",
                          metadata: ["event": "duis.lab_signatures"])
        }
        let router = ControlRouter(engine: engine, daemon: info, access: access, logger: logger, duis: duisService)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, System.coreCount))
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        defer {
            try? pool.syncShutdownGracefully()
            try? group.syncShutdownGracefully()
        }

        let activated = SocketActivation.takeListenFDs()
        let controlPath = runtimeDirectory + "/control.sock"
        let controlBootstrap = ServerBootstrap(group: group)
            .backingOffAccept(listener: "control.sock", logger: logger)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 4 << 20))
            .childChannelInitializer { channel in
                // The connection keeps the limits in force now, whatever a later reload says.
                let limits = settings.current
                guard counter.acquire(.control, under: limits) else {
                    var buffer = channel.allocator.buffer(capacity: 128)
                    buffer.writeString(#"{"jsonrpc":"2.0","id":null,"error":{"code":1010,"message":"too many control connections (maxControlConnections)","data":{"reason":"limit_exceeded"}}}"# + "\n")
                    return channel.writeAndFlush(buffer).flatMap { channel.close() }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLineBytes: limits.maxControlLineBytes)))
                    try channel.pipeline.syncOperations.addHandler(ControlChannelHandler(router: router, pool: pool, counter: counter,
                                                                                             eventBacklogLimit: limits.maxEventBacklogBytes))
                }
            }
        let controlChannel: any Channel
        if let socket = SocketActivation.socket(for: "control", in: activated) {
            controlChannel = try controlBootstrap.withBoundSocket(socket.fd).wait()
            logger.info("took the control socket from systemd", metadata: ["event": "socket.activated", "path": .string(socket.path ?? "?")])
        } else {
            try UnixListener.prepare(path: controlPath)
            controlChannel = try controlBootstrap.bind(unixDomainSocketPath: controlPath).wait()
            UnixListener.setMode(path: controlPath, settings: lab.settings)
        }

        let han = HANServer(engine: engine, group: group, pool: pool, counter: counter, settings: settings, access: access, logger: logger)
        let hanChannels = try han.listen(runtimeDirectory: runtimeDirectory, activated: activated)
        let duis = DUISServer(service: duisService, group: group, pool: pool, settings: lab.settings.duis, logger: logger)
        let duisChannels = try duis.listen(runtimeDirectory: runtimeDirectory, activated: activated, socketSettings: lab.settings)
        // Future-dated DUIS work falls due as the virtual clock moves and as real time passes.
        duisService.restoreHeld()
        duisService.watchClock()
        let duisTick = group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            if duisService.pendingCount > 0 { pool.submit { _ in duisService.runDue() } }
        }

        // The one timer for every scheduled job, re-armed for whatever is due next.
        let timer = JobTimer(eventLoop: group.next(), pool: pool, engine: engine, logger: logger)
        engine.setTimer { realTime in timer.arm(at: realTime) }
        try engine.runDueJobs()

        let statusLine: @Sendable () -> String = {
            let counts = engine.counts, connections = counter.current
            let line = "\(counts.devices) devices in \(counts.premises) premises; \(connections.control) control and \(connections.han) HAN connections"
            guard let degraded = store.health.degraded else { return line }
            return "degraded: \(degraded.fault.explanation), writes refused, reads served; " + line
        }
        Self.watchStorage(store: store, notifier: notifier, logger: logger, statusLine: statusLine)
        // Signals arrive on one dispatch queue; the handlers only hop to work elsewhere. They are in place
        // before anyone can see "ready": a SIGTERM sent between the two would otherwise be ignored and lost.
        let stop = DispatchSemaphore(value: 0)
        let signalQueue = DispatchQueue(label: "smetsd.signals")
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT, SIGHUP] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: signalQueue)
            source.setEventHandler { [notifier, logger, options] in
                if signalNumber == SIGHUP {
                    _ = notifier.reloading(status: "reloading the devices folder")
                    do {
                        let lab = try LabLoader.load(directory: options.labDirectory)
                        let added = try engine.reload(lab)
                        access.replace(lab.access)
                        let plan = settings.reload(lab.settings)
                        engine.traces.setMaxDevices(lab.settings.maxTracedDevices)
                        Self.logReload(logger: logger, added: added, applied: plan.applied, needsRestart: plan.needsRestart)
                    } catch {
                        logger.error("reload failed; keeping the previous devices folder", metadata: ["event": "daemon.reload_failed", "error": .string("\(error)")])
                    }
                    _ = notifier.ready(status: statusLine())
                } else {
                    stop.signal()
                }
            }
            source.resume()
            sources.append(source)
        }

        info.setState("ready")
        _ = notifier.ready(status: statusLine())
        let readyMillis = RealTime.now().unixMillis - started.unixMillis
        logger.info("smetsd is ready", metadata: [
            "event": "daemon.ready", "devices": .stringConvertible(engine.counts.devices), "startup_ms": .stringConvertible(readyMillis),
            "control_socket": .string(controlPath), "state_file": .string(store.path), "virtual_time": .string(engine.now().rfc3339),
            "bulk_nice": .string(BulkWork.probe(nice: engine.lab.settings.bulkThreadNice)),
        ])

        // Watchdog pings and STATUS refreshes, both cheap and only when systemd asked for them.
        let loop = group.next()
        var repeating: [RepeatedTask] = []
        if let interval = SystemdNotifier.watchdogInterval() {
            let notifier = self.notifier
            let nanos = Int64(interval.components.seconds) * 1_000_000_000 + interval.components.attoseconds / 1_000_000_000
            repeating.append(loop.scheduleRepeatedTask(initialDelay: .zero, delay: .nanoseconds(nanos)) { _ in _ = notifier.watchdog() })
        }
        let memory = MemoryReturn()
        repeating.append(loop.scheduleRepeatedTask(initialDelay: .seconds(5), delay: .seconds(5)) { _ in
            pool.submit { _ in memory.check() }  // a trim may take milliseconds: not on an event loop
        })
        // While the disk refuses writes, a one-row write tries it again, so writes resume by themselves.
        let probeMillis = Int64(lab.settings.storageProbeSeconds * 1000)
        repeating.append(loop.scheduleRepeatedTask(initialDelay: .milliseconds(probeMillis), delay: .milliseconds(probeMillis)) { _ in
            guard store.health.degraded != nil else { return }
            pool.submit { _ in try? store.probe() }
        })
        if SystemdNotifier.isAvailable {
            let notifier = self.notifier
            repeating.append(loop.scheduleRepeatedTask(initialDelay: .seconds(5), delay: .seconds(5)) { _ in _ = notifier.status(statusLine()) })
        }

        stop.wait()
        info.setState("stopping")
        _ = notifier.stopping(status: "draining connections")
        logger.info("stopping", metadata: ["event": "daemon.stopping"])
        for source in sources { source.cancel() }
        for task in repeating { task.cancel() }
        duisTick.cancel()
        timer.cancel()
        // Stop accepting, then let in-flight requests finish: the pool drains before the loops stop.
        try? controlChannel.close().wait()
        for channel in hanChannels + duisChannels { try? channel.close().wait() }
        if SocketActivation.socket(for: "control", in: activated) == nil { unlink(controlPath) }
        han.removeSocketFiles()
        duis.removeSocketFiles()
        try? pool.syncShutdownGracefully()
        logger.info("stopped", metadata: ["event": "daemon.stopped"])
        return 0
    }
}

extension Daemon {
    /// The store's health, as a log line and systemd STATUS= when it changes: degraded at the first write
    /// the disk refuses, recovered at the first it takes again.
    static func watchStorage(store: StateStore, notifier: SystemdNotifier, logger: Logger, statusLine: @escaping @Sendable () -> String) {
        // Told on the thread of the write that changed it, maybe under the engine's locks: the log line
        // and the STATUS (which reads the engine's counts) go out from a serial queue, in order.
        let queue = DispatchQueue(label: "smetsd.storage-health")
        @Sendable func report(_ degraded: StoreHealth.Degraded?) {
            if let degraded {
                logger.error("the state folder refuses writes; serving reads and refusing changes until it recovers", metadata: [
                    "event": "store.degraded", "fault": .string(degraded.fault.rawValue), "error": .string(degraded.detail),
                    "state_file": .string(store.path),
                ])
            } else {
                logger.notice("the state folder takes writes again", metadata: ["event": "store.recovered", "state_file": .string(store.path)])
            }
            _ = notifier.status(statusLine())
        }
        store.health.observe { degraded in queue.async { report(degraded) } }
    }

    /// One line per reload, naming the settings it applied and those that wait for a restart
    /// (a warning then, so that `journalctl -p warning` shows it).
    static func logReload(logger: Logger, added: Int, applied: [String], needsRestart: [String]) {
        var metadata: Logger.Metadata = ["event": "daemon.reloaded", "added": .stringConvertible(added),
                                         "settings_applied": .string(applied.joined(separator: ","))]
        guard !needsRestart.isEmpty else {
            logger.info("reloaded the devices folder", metadata: metadata)
            return
        }
        metadata["settings_need_restart"] = .string(needsRestart.joined(separator: ","))
        logger.warning("reloaded the devices folder; restart smetsd to apply \(needsRestart.joined(separator: ", ")) (changed in smetsd.json, fixed while running)",
                       metadata: metadata)
    }
}

/// The daemon's single timer: armed for the next due job's wall-clock time, it runs due jobs on the
/// blocking pool, which re-arms it for the next one.
final class JobTimer: Sendable {
    let eventLoop: any EventLoop
    let pool: NIOThreadPool
    let engine: Engine
    let logger: Logger
    private let scheduled = Mutex<Scheduled<Void>?>(nil)

    init(eventLoop: any EventLoop, pool: NIOThreadPool, engine: Engine, logger: Logger) {
        self.eventLoop = eventLoop; self.pool = pool; self.engine = engine; self.logger = logger
    }

    func arm(at realTime: Timestamp?) {
        let delay = realTime.map { max(0, $0.unixMillis - RealTime.now().unixMillis) }
        let task: Scheduled<Void>? = delay.map { millis in
            eventLoop.scheduleTask(in: .milliseconds(millis)) { [pool, engine, logger] in
                pool.submit { _ in
                    do { try engine.runDueJobs() } catch {
                        logger.error("a scheduled job failed", metadata: ["event": "job.failed", "error": .string("\(error)")])
                    }
                }
            }
        }
        let previous = scheduled.withLock { current in
            let previous = current
            current = task
            return previous
        }
        previous?.cancel()
    }

    func cancel() { scheduled.withLock { $0?.cancel(); $0 = nil } }
}
