#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import Logging
import SMETSCore
import SMETSDUIS
import SMETSRPC
import Synchronization

/// Asynchronous DUIS responses: kept for `duis.responses` (bounded in count and age) and POSTed to
/// the originator's Receive Response URL, in order per originator, retried with back-off, dropped
/// and counted when every attempt failed.
public final class DUISOutbox: Sendable {
    public struct Entry: Sendable {
        public var seq: Int64
        public var kept: Timestamp
        public var originator: EUI64
        public var requestID: String?
        public var code: String
        public var xml: String
        /// pending, delivered, dropped, or kept (no Receive Response URL configured).
        public var delivery: String
    }

    struct State {
        var seq: Int64 = 0
        var entries: [Entry] = []
        var delivered = 0
        var dropped = 0
        var queues: [EUI64: DispatchQueue] = [:]
    }

    static let maxQueues = 1024
    static let sharedQueue = DispatchQueue(label: "smetsd.duis.shared")

    let settings: DUISSettings
    let events: EventHub
    let logger: Logger
    private let state = Mutex(State())
    private let changed = Mutex<[@Sendable () -> Void]>([])

    /// Signs each response with the DCC's key when `duis.signingKey` is set.
    let signer: DUISResponseSigner?

    public init(settings: DUISSettings, events: EventHub, logger: Logger, signer: DUISResponseSigner? = nil) {
        self.settings = settings; self.events = events; self.logger = logger; self.signer = signer
    }

    public var counts: (kept: Int, delivered: Int, dropped: Int) { state.withLock { ($0.entries.count, $0.delivered, $0.dropped) } }

    /// Keeps `response` and, when a Receive Response URL applies, queues its delivery.
    public func post(_ response: DUISResponse, originator: EUI64) {
        let target = settings.receiveURL(for: originator).flatMap(ReceiveResponseTarget.init)
        let now = RealTime.now()
        let xml = signer.map { $0.signedOrLogged(response.xml, logger: logger) } ?? response.xml
        let (seq, queue) = state.withLock { state -> (Int64, DispatchQueue) in
            state.seq += 1
            state.entries.append(Entry(seq: state.seq, kept: now, originator: originator, requestID: response.requestID?.description,
                                       code: response.code.rawValue, xml: xml, delivery: target == nil ? "kept" : "pending"))
            let oldest = now.unixMillis - Int64(settings.keptResponseSeconds) * 1000
            let excess = state.entries.count - settings.keptResponses
            if excess > 0 { state.entries.removeFirst(excess) }
            if let stale = state.entries.firstIndex(where: { $0.kept.unixMillis >= oldest }), stale > 0 { state.entries.removeFirst(stale) }
            // One serial queue per originator keeps its responses in order; past `maxQueues`
            // originators (a flood of made-up EUIs) the rest share one, still in order.
            if let queue = state.queues[originator] { return (state.seq, queue) }
            if state.queues.count >= Self.maxQueues { return (state.seq, Self.sharedQueue) }
            let queue = DispatchQueue(label: "smetsd.duis.\(originator)")
            state.queues[originator] = queue
            return (state.seq, queue)
        }
        notify()
        guard let target else { return }
        let attempts = settings.deliveryAttempts, backoff = settings.deliveryBackoffMillis
        queue.async { [self] in
            var wait = backoff
            var lastError = ""
            for attempt in 1...attempts {
                do {
                    let status = try HTTPPost.post(xml, to: target)
                    if (200..<300).contains(status) {
                        mark(seq, "delivered")
                        events.publish(.duisDelivered, time: RealTime.now(), data: ["seq": .int(seq), "request_id": .string(response.requestID?.description ?? ""),
                                                                                   "status": .int(Int64(status)), "attempts": .int(Int64(attempt))], log: false)
                        return
                    }
                    lastError = "HTTP \(status)"
                } catch {
                    lastError = "\(error)"
                }
                if attempt < attempts { usleep(useconds_t(min(wait, 60_000)) * 1000); wait *= 2 }
            }
            mark(seq, "dropped")
            events.publish(.duisDropped, time: RealTime.now(), data: ["seq": .int(seq), "request_id": .string(response.requestID?.description ?? ""),
                                                                     "error": .string(lastError), "attempts": .int(Int64(attempts))],
                           level: .warning, message: "dropped an asynchronous DUIS response after \(attempts) attempts: \(lastError)")
        }
    }

    func mark(_ seq: Int64, _ delivery: String) {
        state.withLock { state in
            if delivery == "delivered" { state.delivered += 1 } else { state.dropped += 1 }
            if let index = state.entries.firstIndex(where: { $0.seq == seq }) { state.entries[index].delivery = delivery }
        }
        notify()
    }

    /// The kept responses after `seq`, oldest first.
    public func list(after seq: Int64, limit: Int) -> [Entry] {
        state.withLock { state in Array(state.entries.filter { $0.seq > seq }.prefix(limit)) }
    }

    /// Called once after the next change (a new or re-marked response).
    public func onChange(_ callback: @escaping @Sendable () -> Void) { changed.withLock { $0.append(callback) } }

    private func notify() {
        let callbacks = changed.withLock { list -> [@Sendable () -> Void] in defer { list = [] }; return list }
        for callback in callbacks { callback() }
    }
}

extension DUISOutbox.Entry {
    public var json: JSONValue {
        var object: [String: JSONValue] = ["seq": .int(seq), "kept": .string(kept.rfc3339), "originator": .string(originator.description),
                                           "code": .string(code), "delivery": .string(delivery), "xml": .string(xml)]
        object["requestID"] = requestID.map(JSONValue.string) ?? .null
        return .object(object)
    }
}

/// A blocking HTTP/1.1 POST of one XML document, over TCP or a Unix socket; returns the status code.
enum HTTPPost {
    struct Failure: Error, CustomStringConvertible { var description: String }

    static func post(_ xml: String, to target: ReceiveResponseTarget, timeoutSeconds: Int = 5) throws -> Int {
        let fd: Int32
        switch target.endpoint {
        case .unix(let path):
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { close(fd); throw Failure(description: "socket path too long") }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b }; raw[bytes.count] = 0 }
            let result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
            guard result == 0 else { close(fd); throw Failure(description: "connect \(path): errno \(errno)") }
        case .tcp(let host, let port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else { throw Failure(description: "cannot resolve \(host)") }
            defer { freeaddrinfo(list) }
            fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
            guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
            guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else { close(fd); throw Failure(description: "connect \(host):\(port): errno \(errno)") }
        }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let body = Array(xml.utf8)
        let head = "POST \(target.path) HTTP/1.1\r\nHost: \(target.hostHeader)\r\nContent-Type: application/xml\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let message = Array(head.utf8) + body
        var sent = 0
        while sent < message.count {
            let n = message[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send: errno \(errno)") }
            sent += n
        }
        // The status line is all we need: "HTTP/1.1 204 No Content".
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        while !reply.contains(0x0A), reply.count < 4096 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            reply += buffer[0..<n]
        }
        let line = String(decoding: reply.prefix { $0 != 0x0D && $0 != 0x0A }, as: UTF8.self)
        let parts = line.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else { throw Failure(description: "no HTTP status line in the reply") }
        return status
    }
}
