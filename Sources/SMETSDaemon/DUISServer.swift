import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import SMETSDUIS
import Synchronization
import SystemdKit

/// The DUIS HTTP/1.1 listener: duis.sock in the runtime directory (or systemd's), and TCP when
/// `duis.tcp` is set. HTTP-level refusals (404 path, 405 method, 415 media type, 413 size) are
/// answered here, before any XML is read; the document goes to `DUISService` on the blocking pool.
final class DUISServer: Sendable {
    let service: DUISService
    let group: any EventLoopGroup
    let pool: NIOThreadPool
    let settings: DUISSettings
    let logger: Logger
    private let connections = Mutex(0)
    private let socketFiles = Mutex<[String]>([])

    init(service: DUISService, group: any EventLoopGroup, pool: NIOThreadPool, settings: DUISSettings, logger: Logger) {
        self.service = service; self.group = group; self.pool = pool; self.settings = settings; self.logger = logger
    }

    func bootstrap() -> ServerBootstrap {
        ServerBootstrap(group: group)
            .backingOffAccept(listener: "duis", logger: logger)  // no spin on EMFILE (docs/reliability.md)
            .serverChannelOption(.backlog, value: 256)
            .childChannelInitializer { [self] channel in
                let admitted = connections.withLock { count -> Bool in
                    guard count < settings.maxConnections else { return false }
                    count += 1
                    return true
                }
                channel.closeFuture.whenComplete { [self] _ in if admitted { connections.withLock { $0 -= 1 } } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(DUISHTTPHandler(server: self, admitted: admitted))
                }
            }
    }

    func listen(runtimeDirectory: String, activated: [ActivatedSocket], socketSettings: Settings) throws -> [any Channel] {
        var channels: [any Channel] = []
        if let socket = SocketActivation.socket(for: "duis", in: activated) {
            channels.append(try bootstrap().withBoundSocket(socket.fd).wait())
            logger.info("took the DUIS socket from systemd", metadata: ["event": "socket.activated", "path": .string(socket.path ?? "?")])
        } else {
            let path = runtimeDirectory + "/duis.sock"
            try UnixListener.prepare(path: path)
            channels.append(try bootstrap().bind(unixDomainSocketPath: path).wait())
            UnixListener.setMode(path: path, settings: socketSettings)
            socketFiles.withLock { $0.append(path) }
        }
        if let address = settings.tcpAddress {
            let channel = try bootstrap().serverChannelOption(.socketOption(.so_reuseaddr), value: 1).bind(host: address.host, port: address.port).wait()
            logger.info("DUIS listening on TCP", metadata: ["event": "duis.listening", "address": .string("\(address.host):\(channel.localAddress?.port ?? address.port)")])
            channels.append(channel)
        }
        return channels
    }

    func removeSocketFiles() {
        for path in socketFiles.withLock({ $0 }) { unlink(path) }
    }

    func refused(_ status: HTTPResponseStatus, _ reason: String, head: HTTPRequestHead) {
        logger.warning("DUIS HTTP request refused", metadata: ["event": "duis.refused", "http_status": .stringConvertible(status.code),
                                                              "reason": .string(reason), "method": .string("\(head.method)"), "path": .string(String(head.uri.prefix(200)))])
    }
}

/// One HTTP connection: checks the head, gathers the body up to the limit, answers in order.
final class DUISHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let server: DUISServer
    let admitted: Bool
    private var head: HTTPRequestHead?
    private var path: DUISServicePath?
    private var body: [UInt8] = []
    private var refusal: (status: HTTPResponseStatus, text: String, extra: [(String, String)])?
    private var busy = false

    init(server: DUISServer, admitted: Bool) { self.server = server; self.admitted = admitted }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
            refusal = nil
            path = nil
            let limit = server.settings.maxBodyBytes
            let route = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            let mediaType = head.headers.first(name: "content-type")?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
            if !admitted {
                refusal = (.serviceUnavailable, "too many DUIS connections (duis.maxConnections)", [])
            } else if let known = DUISServicePath(rawValue: route) {
                if head.method != .POST {
                    refusal = (.methodNotAllowed, "\(route) takes POST", [("Allow", "POST")])
                } else if mediaType != "application/xml" && mediaType != "text/xml" {
                    refusal = (.unsupportedMediaType, "a DUIS request is application/xml (or text/xml), not \(mediaType ?? "untyped")", [])
                } else if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > limit {
                    refusal = (.payloadTooLarge, "the body is \(length) bytes; duis.maxBodyBytes is \(limit)", [])
                } else {
                    path = known
                }
            } else {
                refusal = (.notFound, "no DUIS service at this path; use /api/v1/serviceS, serviceT or serviceD", [])
            }
            if let refusal { server.refused(refusal.status, refusal.text, head: head) }
        case .body(var buffer):
            guard refusal == nil else { return }
            if body.count + buffer.readableBytes > server.settings.maxBodyBytes {
                refusal = (.payloadTooLarge, "the body is larger than duis.maxBodyBytes (\(server.settings.maxBodyBytes))", [])
                body = []
                if let head { server.refused(.payloadTooLarge, "body over the limit", head: head) }
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let head else { return }
            let keepAlive = head.isKeepAlive && refusal == nil
            if let refusal {
                write(context: context, status: refusal.status, contentType: "text/plain; charset=utf-8", body: refusal.text + "\n",
                      extra: refusal.extra, keepAlive: false, then: nil)
                return
            }
            guard let path else { return }
            let service = server.service, document = body
            body = []
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            server.pool.runIfActive(eventLoop: context.eventLoop) { service.handle(path: path, body: document) }
                .whenComplete { result in
                    let (handler, context) = loopBound.value
                    switch result {
                    case .success(let reply):
                        handler.write(context: context, status: HTTPResponseStatus(statusCode: reply.status), contentType: reply.contentType,
                                      body: reply.body, extra: [], keepAlive: keepAlive, then: reply.then)
                    case .failure:
                        handler.write(context: context, status: .serviceUnavailable, contentType: "text/plain; charset=utf-8",
                                      body: "smetsd is stopping\n", extra: [], keepAlive: false, then: nil)
                    }
                }
        }
    }

    func write(context: ChannelHandlerContext, status: HTTPResponseStatus, contentType: String, body: String, extra: [(String, String)],
               keepAlive: Bool, then: (@Sendable () -> Void)?) {
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", "\(body.utf8.count)")] + extra)
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        let pool = server.pool
        let channel = context.channel
        done.whenComplete { _ in
            if let then { pool.submit { _ in then() } }
            if !keepAlive { channel.close(promise: nil) }
        }
    }
}
