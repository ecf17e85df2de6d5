#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import SMETSCore
import SMETSDevices
import SMETSWire
import Synchronization
import SystemdKit

/// Where the frames of the device a link is attached to reach that link.
///
/// A frame written on the link's own event loop while its handler is in a read batch (between
/// `channelRead` and `channelReadComplete`) is not flushed there: the handler flushes once when
/// the batch ends, so the answers to every request one read brought leave in one write. Anything
/// else is flushed at once.
final class LinkOutput: Sendable {
    let channel: any Channel
    private let batch: NIOLoopBoundBox<Batch>

    struct Batch {
        var reading = false
        var unflushed = false
    }

    /// Made on the link's event loop.
    init(channel: any Channel) {
        self.channel = channel
        batch = NIOLoopBoundBox(Batch(), eventLoop: channel.eventLoop)
    }

    func send(_ bytes: [UInt8]) {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        if channel.eventLoop.inEventLoop, batch.value.reading {
            batch.value.unflushed = true
            channel.write(buffer, promise: nil)
        } else {
            channel.writeAndFlush(buffer, promise: nil)
        }
    }

    /// Called by the link's handler on its event loop.
    func beginRead() { batch.value.reading = true }

    /// Ends the read batch; true when what it wrote is still to be flushed.
    func endRead() -> Bool {
        let unflushed = batch.value.unflushed
        batch.value = Batch()
        return unflushed
    }
}

/// One HAN link as the control API shows it (`han.links`): a rig learns its link's ID here, or from
/// the `han.attached` event, to aim a fault rule at that link alone.
struct HANLinkInfo: Sendable {
    var id: Int
    var device: EUI64
    /// The rig's node EUI-64 from its HELLO (nil until the WELCOME is sent).
    var rig: EUI64?
    /// The rig process, from SO_PEERCRED (nil when it could not be read).
    var peer: PeerCredentials?
    var attachedAt: Timestamp
}

/// The links attached to each device: every frame a device sends goes to all of them. Each link has
/// an ID, unique for the daemon's life (never reused, so a rule on a closed link never matches a new one).
final class LinkRegistry: Sendable {
    struct Links {
        var nextID = 0
        var byDevice: [EUI64: [Int: LinkOutput]] = [:]
        var info: [Int: HANLinkInfo] = [:]
    }

    private let links = Mutex(Links())

    /// Attaches unless `device` already has `limit` links (the attaching link's `maxLinksPerDevice`);
    /// returns the link's ID.
    func attach(_ output: LinkOutput, to device: EUI64, limit: Int, at time: Timestamp) -> Int? {
        links.withLock { links in
            var attached = links.byDevice[device, default: [:]]
            guard attached.count < limit else { return nil }
            links.nextID += 1
            attached[links.nextID] = output
            links.byDevice[device] = attached
            links.info[links.nextID] = HANLinkInfo(id: links.nextID, device: device, attachedAt: time)
            return links.nextID
        }
    }

    /// Who is on the link, once the WELCOME is sent.
    func describe(_ id: Int, rig: EUI64, peer: PeerCredentials?) {
        links.withLock { links in
            links.info[id]?.rig = rig
            links.info[id]?.peer = peer
        }
    }

    func detach(_ id: Int) {
        links.withLock { links in
            guard let device = links.info.removeValue(forKey: id)?.device else { return }
            links.byDevice[device]?[id] = nil
            if links.byDevice[device]?.isEmpty == true { links.byDevice[device] = nil }
        }
    }

    func outputs(of device: EUI64) -> [LinkOutput] { links.withLock { Array(($0.byDevice[device] ?? [:]).values) } }

    func channels(of device: EUI64) -> [any Channel] { outputs(of: device).map(\.channel) }

    /// The device's links with their IDs, in ID order (a frame's legs to its links pass the link rules in a stable order).
    func identifiedChannels(of device: EUI64) -> [(id: Int, channel: any Channel)] {
        links.withLock { ($0.byDevice[device] ?? [:]).sorted { $0.key < $1.key }.map { (id: $0.key, channel: $0.value.channel) } }
    }

    func output(_ id: Int) -> LinkOutput? {
        links.withLock { links in links.info[id].flatMap { links.byDevice[$0.device]?[id] } }
    }

    func channel(_ id: Int) -> (any Channel)? { output(id)?.channel }

    func info(_ id: Int) -> HANLinkInfo? { links.withLock { $0.info[id] } }

    /// Every open link, in ID order.
    var all: [HANLinkInfo] { links.withLock { $0.info.values.sorted { $0.id < $1.id } } }
}

/// The HAN link server: `han.sock` for every device, plus a socket per lab device.
final class HANServer: Sendable {
    let engine: Engine
    let group: any EventLoopGroup
    let pool: NIOThreadPool
    let counter: ConnectionCounter
    /// Read when a connection is accepted; the socket count, mode and group only at `listen`.
    let settings: LiveSettings
    let access: AccessPolicy
    let logger: Logger
    var links: LinkRegistry { engine.links }
    private let socketFiles = Mutex<[String]>([])

    init(engine: Engine, group: any EventLoopGroup, pool: NIOThreadPool, counter: ConnectionCounter, settings: LiveSettings,
         access: AccessPolicy, logger: Logger) {
        self.engine = engine; self.group = group; self.pool = pool; self.counter = counter; self.settings = settings
        self.access = access
        self.logger = logger
        let links = engine.links
        engine.setFrameSink { outgoing in
            // Links first: a frame no rig is attached to see (most of a firmware push) is encoded
            // only when a capture wants it.
            let outputs = links.outputs(of: outgoing.from)
            let capturing = engine.captures.isActive
            guard capturing || !outputs.isEmpty else { return }
            let data = outgoing.hanData
            if capturing { engine.capture(data) }
            guard !outputs.isEmpty else { return }
            let bytes = HANFrame.data(data).encoded()
            for output in outputs { output.send(bytes) }
        }
        // A frame's leg to one link, after that link's rules (captured once already, as the device sent it).
        engine.setLinkSink { outgoing, link in
            guard let output = links.output(link) else { return }
            output.send(HANFrame.data(outgoing.hanData).encoded())
        }
        // Delayed frames wait on an event loop's timer, then go out from the blocking pool (a frame to
        // another emulated device may write).
        engine.faults.setScheduler { [group, pool] millis, work in
            group.next().scheduleTask(in: .milliseconds(Int64(millis))) { pool.submit { _ in work() } }
        }
        // Out of han.links before the close, so that a rig that sees its link closed never finds it
        // still listed (the channel's own detach, later on its event loop, finds it gone).
        engine.faults.setLinkDropper { device in
            for (id, channel) in links.identifiedChannels(of: device) {
                links.detach(id)
                channel.close(promise: nil)
            }
        }
        engine.faults.setLinkCloser { id in
            let channel = links.channel(id)
            links.detach(id)
            channel?.close(promise: nil)
        }
    }

    /// A removed device's links are told, each by its own link machine (ERROR 2 and the close).
    func closeLinks(of device: EUI64) {
        for channel in links.channels(of: device) {
            channel.pipeline.fireUserInboundEventTriggered(HANDeviceRemoved(device: device))
        }
    }

    func bootstrap(impliedDevice: EUI64?) -> ServerBootstrap {
        let engine = self.engine, pool = self.pool, counter = self.counter, settings = self.settings, links = self.links
        let access = self.access
        return ServerBootstrap(group: group)
            .backingOffAccept(listener: impliedDevice.map { "devices/\($0).sock" } ?? "han.sock", logger: logger)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            // A rig that stops reading its answers stops being read: its requests wait in the kernel,
            // not as answers piling up in our memory.
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 64 << 10, high: 256 << 10))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // The link keeps the limits in force now, whatever a later reload says.
                    let limits = settings.current
                    let handler = HANChannelHandler(engine: engine, pool: pool, counter: counter, links: links, settings: limits,
                                                    access: access, impliedDevice: impliedDevice, admitted: counter.acquire(.han, under: limits))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
    }

    /// Listens on `han.sock` (from systemd when activated) and on per-device sockets.
    func listen(runtimeDirectory: String, activated: [ActivatedSocket]) throws -> [any Channel] {
        let settings = self.settings.current
        engine.setLinkCloser { [weak self] id in self?.closeLinks(of: id) }
        var channels: [any Channel] = []
        if let socket = SocketActivation.socket(for: "han", in: activated) {
            channels.append(try bootstrap(impliedDevice: nil).withBoundSocket(socket.fd).wait())
            logger.info("took the HAN socket from systemd", metadata: ["event": "socket.activated", "path": .string(socket.path ?? "?")])
        } else {
            let path = runtimeDirectory + "/han.sock"
            try UnixListener.prepare(path: path)
            channels.append(try bootstrap(impliedDevice: nil).bind(unixDomainSocketPath: path).wait())
            UnixListener.setMode(path: path, settings: settings)
            socketFiles.withLock { $0.append(path) }
        }
        // A socket per lab device (the lab's own, not generated ones), up to the configured number.
        let labDevices = engine.lab.definition.premises.flatMap { $0.devices.map(\.id) }.prefix(settings.maxPerDeviceSockets)
        for id in labDevices where engine.device(id) != nil {
            let path = runtimeDirectory + "/devices/\(id).sock"
            do {
                try UnixListener.prepare(path: path)
                channels.append(try bootstrap(impliedDevice: id).bind(unixDomainSocketPath: path).wait())
                UnixListener.setMode(path: path, settings: settings)
                socketFiles.withLock { $0.append(path) }
            } catch {
                logger.warning("no per-device socket", metadata: ["event": "socket.failed", "device_id": .string(id.description), "error": .string("\(error)")])
            }
        }
        return channels
    }

    func removeSocketFiles() {
        for path in socketFiles.withLock({ $0 }) { unlink(path) }
    }
}

extension OutgoingZCL {
    /// The DATA frame a device's answer travels in.
    var hanData: HANData {
        HANData(source: from, destination: to, profileID: ZCLProfileID.smartEnergy, clusterID: cluster, sourceEndpoint: HANLink.deviceEndpoint,
                destinationEndpoint: destinationEndpoint, zcl: zcl)
    }
}

/// What `devices.remove` tells each link attached to the removed device, through its pipeline.
struct HANDeviceRemoved: Sendable {
    let device: EUI64
}

/// One HAN link: carries out what its ``HANLinkMachine`` returns, and nothing else decides.
final class HANChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let engine: Engine
    let pool: NIOThreadPool
    let counter: ConnectionCounter
    let links: LinkRegistry
    let access: AccessPolicy
    let admitted: Bool
    private var machine: HANLinkMachine
    private var peer: PeerCredentials?
    /// This link's ID once attached (``LinkRegistry``): fault rules may name it.
    private var linkID: Int?
    private var helloTimer: Scheduled<Void>?
    /// The last reply queued on the blocking pool; later ones chain behind it.
    private var tail: EventLoopFuture<Void>?
    /// Where the attached device's frames reach this link (made when it registers).
    private var output: LinkOutput?
    /// Runs a delivery to one of our devices (an answer to another emulated device) where it may block.
    private let deliverLater: @Sendable (@escaping @Sendable () -> Void) -> Void

    init(engine: Engine, pool: NIOThreadPool, counter: ConnectionCounter, links: LinkRegistry, settings: Settings,
         access: AccessPolicy, impliedDevice: EUI64?, admitted: Bool) {
        self.engine = engine; self.pool = pool; self.counter = counter; self.links = links
        self.access = access
        self.admitted = admitted
        deliverLater = { [pool] work in pool.submit { _ in work() } }
        self.machine = HANLinkMachine(configuration: .init(
            impliedDevice: impliedDevice, maxFrameLength: settings.maxHANFrameBytes,
            helloTimeout: .seconds(settings.helloTimeoutSeconds), maxConnections: settings.maxHANConnections,
            maxLinksPerDevice: settings.maxLinksPerDevice))
    }

    func channelActive(context: ChannelHandlerContext) {
        perform(machine.linkOpened(admitted: admitted), context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(machine.linkClosed(), context: context)
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        context.channel.setOption(.autoRead, value: context.channel.isWritable).whenFailure { _ in }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        output?.beginRead()
        perform(machine.received(buffer.readableBytesView), context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // One flush for every answer this read batch produced on the loop.
        if output?.endRead() == true { context.flush() }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let removed = event as? HANDeviceRemoved {
            perform(machine.deviceRemoved(removed.device), context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func perform(_ actions: [HANLinkMachine.Action], context: ChannelHandlerContext) {
        for action in actions { perform(action, context: context) }
    }

    private func perform(_ action: HANLinkMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .readPeerCredentials:
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            PeerCredentialReader.read(channel: context.channel).whenSuccess { peer in loopBound.value.peer = peer }
        case .startHelloTimer(let timeout):
            helloTimer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) {
                self.helloTimer = nil
                self.perform(self.machine.helloTimeoutFired(), context: context)
            }
        case .cancelHelloTimer:
            helloTimer?.cancel()
            helloTimer = nil
        case .send(let frame):
            let bytes = frame.encoded()
            var buffer = context.channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        case .close:
            context.close(promise: nil)
        case .identify(let target):
            let role = access.role(for: peer)
            let caller = HANLinkMachine.Caller(role: role.description, uid: peer?.uid, mayAttach: access.mayAttach(role))
            // WELCOME names the firmware the device runs (han-link.md rev 1.1), never the CPL's identity.
            let facts = engine.device(target).map { device in
                let model = engine.model(for: device)
                return HANLinkMachine.DeviceFacts(type: device.type, mode: device.mode, manufacturerCode: model?.manufacturer.numericCode ?? 0,
                                                  imageType: model?.numericImageType ?? 0, firmware: device.firmwareVersion)
            }
            perform(machine.identified(caller: caller, device: facts), context: context)
        case .register(let device):
            // A refuseLinks fault answers as a device with no room for the link (ERROR 6).
            if !engine.refusesLink(to: device) {
                let output = self.output ?? LinkOutput(channel: context.channel)
                self.output = output
                linkID = links.attach(output, to: device, limit: machine.configuration.maxLinksPerDevice, at: engine.now())
            }
            perform(machine.registered(linkID != nil), context: context)
        case .detach:
            if let linkID { links.detach(linkID) }
            linkID = nil
        case .releaseAdmission:
            counter.release(.han)
        case .dispatch(let data, let device):
            dispatch(data, to: device, context: context)
        case .publishAttached(let device, let rig):
            var data: [String: EventValue] = ["rig": .string(rig.description)]
            if let linkID {
                links.describe(linkID, rig: rig, peer: peer)
                data["link"] = .int(Int64(linkID))
            }
            engine.events.publish(.hanAttached, device: device, time: engine.now(), data: data, level: .debug)
        case .publishAccessRefused(let caller):
            engine.events.publish(.accessRefused, time: engine.now(), data: [
                "method": "han.attach", "role": .string(caller.role), "caller_uid": .string(caller.uid.map { String($0) } ?? "unknown"),
            ], level: .warning, message: "refused a HAN link")
        }
    }

    private func dispatch(_ data: HANData, to device: EUI64, context: ChannelHandlerContext) {
        guard engine.faults.isActive else { return deliver(data, to: device, context: context) }
        // The rules decide whether, when and as what the frame reaches the device; a frame they
        // let through later is handed back to this link's event loop, where its order is kept.
        let eventLoop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: eventLoop)
        engine.impair(device: device, peer: data.source, direction: .toDevice, cluster: data.clusterID, zcl: data.zcl, link: linkID) { zcl in
            var impaired = data
            impaired.zcl = zcl
            let received = impaired
            let run: @Sendable () -> Void = { let (handler, context) = bound.value; handler.deliver(received, to: device, context: context) }
            if eventLoop.inEventLoop { run() } else { eventLoop.execute(run) }
        }
    }

    private func deliver(_ data: HANData, to device: EUI64, context: ChannelHandlerContext) {
        engine.capture(data)
        let handling = engine.handleZCL(deviceID: device, source: data.source, profile: data.profileID, cluster: data.clusterID, zcl: data.zcl)
        // Answers go back to the endpoint the rig asked from.
        let rig = data.source, endpoint = data.sourceEndpoint
        let blocking = if case .blocking = handling { true } else { false }
        switch (machine.route(blocking: blocking), handling) {
        case (.emitNow, .now(let replies)):
            // The request and its answers are traced together (one clock read). No closure or
            // copy of the answers on this path, the HAN's hottest: it runs for every read.
            let incoming = Engine.IncomingFrame(device: device, peer: data.source, cluster: data.clusterID, zcl: data.zcl)
            engine.emit(Self.addressed(replies, to: rig, endpoint: endpoint), answering: incoming, deliverLater: deliverLater)
        case (.enqueue, .now(let replies)):
            engine.traceIncoming(device: device, from: data.source, cluster: data.clusterID, zcl: data.zcl)
            enqueue({ Self.addressed(replies, to: rig, endpoint: endpoint) }, context: context)
        case (_, .blocking(let produce)):
            // The machine never routes blocking work to .emitNow.
            engine.traceIncoming(device: device, from: data.source, cluster: data.clusterID, zcl: data.zcl)
            enqueue({ Self.addressed(produce(), to: rig, endpoint: endpoint) }, context: context)
        }
    }

    /// The replies with those to `rig` sent to the endpoint it asked from (copied only when one differs).
    private static func addressed(_ replies: [OutgoingZCL], to rig: EUI64, endpoint: UInt8) -> [OutgoingZCL] {
        guard replies.contains(where: { $0.to == rig && $0.destinationEndpoint != endpoint }) else { return replies }
        return replies.map { reply in
            var reply = reply
            if reply.to == rig { reply.destinationEndpoint = endpoint }
            return reply
        }
    }

    private func enqueue(_ work: @escaping @Sendable () -> [OutgoingZCL], context: ChannelHandlerContext) {
        let engine = self.engine, pool = self.pool
        let eventLoop = context.eventLoop
        let previous = tail ?? eventLoop.makeSucceededVoidFuture()
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        tail = previous.flatMap {
            pool.runIfActive(eventLoop: eventLoop) { engine.emit(work()) }
        }.always { _ in
            loopBound.value.machine.queuedReplyFinished()
        }
    }
}
