#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import SMETSCore
import SMETSWire
import Synchronization
import SystemdKit

/// The links attached to each device: every frame a device sends goes to all of them.
final class LinkRegistry: Sendable {
    private let links = Mutex<[EUI64: [ObjectIdentifier: any Channel]]>([:])

    /// Attaches unless `device` already has `limit` links (the attaching link's `maxLinksPerDevice`).
    func attach(_ channel: any Channel, to device: EUI64, limit: Int) -> Bool {
        links.withLock { links in
            var attached = links[device, default: [:]]
            guard attached.count < limit else { return false }
            attached[ObjectIdentifier(channel)] = channel
            links[device] = attached
            return true
        }
    }

    func detach(_ channel: any Channel, from device: EUI64) {
        links.withLock { links in
            links[device]?[ObjectIdentifier(channel)] = nil
            if links[device]?.isEmpty == true { links[device] = nil }
        }
    }

    func channels(of device: EUI64) -> [any Channel] { links.withLock { Array(($0[device] ?? [:]).values) } }
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
    let links = LinkRegistry()
    private let socketFiles = Mutex<[String]>([])

    init(engine: Engine, group: any EventLoopGroup, pool: NIOThreadPool, counter: ConnectionCounter, settings: LiveSettings,
         access: AccessPolicy, logger: Logger) {
        self.engine = engine; self.group = group; self.pool = pool; self.counter = counter; self.settings = settings
        self.access = access
        self.logger = logger
        let links = self.links
        engine.setFrameSink { outgoing in
            let frame = HANFrame.data(HANData(source: outgoing.from, destination: outgoing.to, profileID: ZCLProfileID.smartEnergy,
                                              clusterID: outgoing.cluster, sourceEndpoint: HANLink.deviceEndpoint,
                                              destinationEndpoint: outgoing.destinationEndpoint, zcl: outgoing.frame.encoded()))
            let bytes = frame.encoded()
            for channel in links.channels(of: outgoing.from) {
                var buffer = channel.allocator.buffer(capacity: bytes.count)
                buffer.writeBytes(bytes)
                channel.writeAndFlush(buffer, promise: nil)
            }
        }
    }

    /// A removed device's links learn it is gone (ERROR 2) and are closed.
    func closeLinks(of device: EUI64) {
        let bytes = HANFrame.error(HANError(code: .unknownDevice, reason: "device \(device) was removed")).encoded()
        for channel in links.channels(of: device) {
            var buffer = channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            channel.writeAndFlush(buffer).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func bootstrap(impliedDevice: EUI64?) -> ServerBootstrap {
        let engine = self.engine, pool = self.pool, counter = self.counter, settings = self.settings, links = self.links
        let access = self.access
        return ServerBootstrap(group: group)
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

/// One HAN link: HELLO, then DATA frames to the attached device, per `han-link.md` version 1.
final class HANChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let engine: Engine
    let pool: NIOThreadPool
    let counter: ConnectionCounter
    let links: LinkRegistry
    let settings: Settings
    let access: AccessPolicy
    let impliedDevice: EUI64?
    let admitted: Bool
    private var peer: PeerCredentials?
    private var decoder: HANFrameDecoder
    private var attached: EUI64?
    private var helloTimeout: Scheduled<Void>?
    /// Replies still being produced on the blocking pool; later replies wait for them, so a link
    /// sees answers in the order it asked.
    private var inFlight = 0
    private var tail: EventLoopFuture<Void>?
    private var closing = false

    init(engine: Engine, pool: NIOThreadPool, counter: ConnectionCounter, links: LinkRegistry, settings: Settings,
         access: AccessPolicy, impliedDevice: EUI64?, admitted: Bool) {
        self.engine = engine; self.pool = pool; self.counter = counter; self.links = links; self.settings = settings
        self.access = access
        self.impliedDevice = impliedDevice; self.admitted = admitted
        self.decoder = HANFrameDecoder(maxFrameLength: settings.maxHANFrameBytes)
    }

    func channelActive(context: ChannelHandlerContext) {
        guard admitted else {
            fail(context: context, .tooManyConnections, "too many HAN connections (maxHANConnections \(settings.maxHANConnections))")
            return
        }
        let channel = context.channel
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        PeerCredentialReader.read(channel: channel).whenSuccess { peer in loopBound.value.peer = peer }
        helloTimeout = context.eventLoop.scheduleTask(in: .milliseconds(Int64(settings.helloTimeoutSeconds * 1000))) {
            channel.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        helloTimeout?.cancel()
        if admitted { counter.release(.han) }
        if let attached { links.detach(context.channel, from: attached) }
        attached = nil
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        context.channel.setOption(.autoRead, value: context.channel.isWritable).whenFailure { _ in }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let buffer = unwrapInboundIn(data)
        decoder.append(buffer.readableBytesView)
        while !closing {
            let frame: HANFrame?
            do {
                frame = try decoder.next()
            } catch {
                fail(context: context, error.code, error.description)
                return
            }
            guard let frame else { return }
            handle(frame, context: context)
        }
    }

    private func handle(_ frame: HANFrame, context: ChannelHandlerContext) {
        switch frame {
        case .hello(let greeting):
            attach(greeting, context: context)
        case .data(let data):
            guard let device = attached else {
                send(.error(HANError(code: .notAttached, reason: "send HELLO first")), context: context)
                return
            }
            guard data.destination == device, data.destinationEndpoint == HANLink.deviceEndpoint else {
                send(.error(HANError(code: .notAttached, reason: "this link is attached to \(device) endpoint 1, not \(data.destination) endpoint \(data.destinationEndpoint)")), context: context)
                return
            }
            dispatch(data, device: device, context: context)
        case .welcome, .error:
            fail(context: context, .malformedFrame, "a rig does not send \(frame.type) frames")
        }
    }

    private func attach(_ hello: HANHello, context: ChannelHandlerContext) {
        guard attached == nil else {
            send(.error(HANError(code: .notAttached, reason: "already attached to \(attached!); open another link for another device")), context: context)
            return
        }
        let role = access.role(for: peer)
        guard access.mayAttach(role) else {
            engine.events.publish(.accessRefused, time: engine.now(), data: [
                "method": "han.attach", "role": .string(role.description), "caller_uid": .string(peer.map { String($0.uid) } ?? "unknown"),
            ], level: .warning, message: "refused a HAN link")
            fail(context: context, .notAuthorised, "the \(role.kind) role may not attach to devices; ask the lab operator for the rig role")
            return
        }
        guard hello.version == HANLink.version else {
            fail(context: context, .unsupportedVersion, "HAN link version \(hello.version) is not supported; this daemon speaks version \(HANLink.version)")
            return
        }
        let target: EUI64
        if let impliedDevice {
            guard hello.target == .zero || hello.target == impliedDevice else {
                fail(context: context, .unknownDevice, "this socket serves \(impliedDevice), not \(hello.target)")
                return
            }
            target = impliedDevice
        } else {
            target = hello.target
        }
        guard let device = engine.device(target) else {
            fail(context: context, .unknownDevice, "no device \(target)")
            return
        }
        guard links.attach(context.channel, to: target, limit: settings.maxLinksPerDevice) else {
            fail(context: context, .tooManyConnections, "\(target) already has \(settings.maxLinksPerDevice) links attached (maxLinksPerDevice)")
            return
        }
        helloTimeout?.cancel()
        helloTimeout = nil
        attached = target
        let model = engine.model(for: device)
        let welcome = HANWelcome(version: HANLink.version, device: target, deviceType: device.type.rawValue, smetsMode: device.mode.rawValue,
                                 manufacturerCode: model?.manufacturer.numericCode ?? 0, imageType: model?.numericImageType ?? 0,
                                 currentFileVersion: engine.presentedFirmware(of: device).rawValue)
        send(.welcome(welcome), context: context)
        engine.events.publish(.hanAttached, device: target, time: engine.now(), data: ["rig": .string(hello.rigNode.description)], level: .debug)
    }

    private func dispatch(_ data: HANData, device: EUI64, context: ChannelHandlerContext) {
        let engine = self.engine
        engine.traceIncoming(device: device, from: data.source, cluster: data.clusterID, zcl: data.zcl)
        let handling = engine.handleZCL(deviceID: device, source: data.source, profile: data.profileID, cluster: data.clusterID, zcl: data.zcl)
        // Answers go back to the endpoint the rig asked from.
        let rig = data.source, endpoint = data.sourceEndpoint
        let addressed: @Sendable ([OutgoingZCL]) -> [OutgoingZCL] = { replies in
            replies.map { reply in
                var reply = reply
                if reply.to == rig { reply.destinationEndpoint = endpoint }
                return reply
            }
        }
        switch handling {
        case .now(let replies) where inFlight == 0:
            if !replies.isEmpty { emitOnPool(addressed(replies)) }
        case .now(let replies):
            enqueue(context: context) { addressed(replies) }
        case .blocking(let work):
            enqueue(context: context) { addressed(work()) }
        }
    }

    /// Replies computed on the loop still go out through `emit`, which may hand them to another
    /// emulated device (a blocking write): fast path for the common case of a rig as the peer.
    private func emitOnPool(_ replies: [OutgoingZCL]) {
        if replies.allSatisfy({ engine.device($0.to) == nil }) {
            engine.emit(replies)
        } else {
            let engine = self.engine
            pool.submit { _ in engine.emit(replies) }
        }
    }

    private func enqueue(context: ChannelHandlerContext, _ work: @escaping @Sendable () -> [OutgoingZCL]) {
        let engine = self.engine, pool = self.pool
        let eventLoop = context.eventLoop
        let previous = tail ?? eventLoop.makeSucceededVoidFuture()
        inFlight += 1
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        tail = previous.flatMap {
            pool.runIfActive(eventLoop: eventLoop) { engine.emit(work()) }
        }.always { _ in
            loopBound.value.inFlight -= 1
        }
    }

    private func send(_ frame: HANFrame, context: ChannelHandlerContext) {
        let bytes = frame.encoded()
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    /// Answers with the ERROR the contract names and closes, for errors that close the link.
    private func fail(context: ChannelHandlerContext, _ code: HANErrorCode, _ reason: String) {
        send(.error(HANError(code: code, reason: reason)), context: context)
        if code.closesConnection {
            closing = true
            context.close(promise: nil)
        }
    }
}
