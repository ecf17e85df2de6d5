import SMETSCore
import SMETSDevices
import SMETSStore
import SMETSWire
import Synchronization

/// Which way a frame went, seen from the device that traces it.
public enum FrameDirection: String, Sendable, Hashable {
    /// To the device.
    case incoming = "in"
    /// From the device.
    case outgoing = "out"
}

/// One frame a device sent or received, kept for `han.trace`.
public struct TracedFrame: Sendable {
    public var time: Timestamp
    public var direction: FrameDirection
    public var peer: EUI64
    public var cluster: UInt16
    public var zcl: [UInt8]
}

/// The last frames of each device that had traffic, in a bounded ring per device (mutated in place:
/// recording a frame never copies the ring).
///
/// The rings are spread over shards by device, each with its own lock: the event loops answering
/// rigs and a firmware push recording thousands of frames of other devices do not queue on one
/// lock (a holder the scheduler preempts would hold every link's answer up with it). Only a device
/// starting a ring takes the `membership` lock, which keeps the order rings were made in, so the
/// oldest is dropped first whatever shard it is in.
final class FrameTraces: Sendable {
    static let perDevice = 200
    /// Shards of the rings, by device. A power of two, so a shard is a mask of the device's bits.
    static let shardCount = 64

    struct Ring {
        var frames: [TracedFrame] = []
        var oldest = 0

        mutating func append(_ frame: TracedFrame) {
            if frames.count < FrameTraces.perDevice {
                frames.append(frame)
            } else {
                frames[oldest] = frame
                oldest = (oldest + 1) % frames.count
            }
        }

        var inOrder: [TracedFrame] { Array(frames[oldest...] + frames[..<oldest]) }
    }

    final class Shard: Sendable {
        let rings = Mutex<[EUI64: Ring]>([:])
    }

    struct Membership {
        /// Devices in the order their rings were made, so the oldest is dropped first.
        var order: [EUI64] = []
        var dropped = 0
    }

    private let shards: [Shard] = (0..<FrameTraces.shardCount).map { _ in Shard() }
    private let membership = Mutex(Membership())
    /// How many devices keep a trace at once: a hub push to thousands of devices must not keep
    /// 200 frames of each forever. Set again on reload (`maxTracedDevices`).
    private let limit: Atomic<Int>
    var maxDevices: Int { limit.load(ordering: .relaxed) }

    init(maxDevices: Int = 2048) { limit = Atomic(maxDevices) }

    /// A lower limit drops the oldest rings when the next device starts one.
    func setMaxDevices(_ count: Int) { limit.store(count, ordering: .relaxed) }

    private func shard(_ device: EUI64) -> Shard {
        // The low bits of an EUI-64 vary between devices of a lab (generated IDs count up).
        let bits = device.rawValue ^ (device.rawValue >> 29)
        return shards[Int(truncatingIfNeeded: bits) & (Self.shardCount - 1)]
    }

    /// Records one frame: under its device's shard lock when the ring exists (every frame but a
    /// device's first), else under the membership lock too.
    func record(_ device: EUI64, _ frame: TracedFrame) {
        let shard = self.shard(device)
        let appended = shard.rings.withLock { rings -> Bool in
            // One hash of the key, and the ring changed where it is stored.
            guard let index = rings.index(forKey: device) else { return false }
            rings.values[index].append(frame)
            return true
        }
        if !appended { start(device, with: frame, in: shard) }
    }

    /// Records frames in order (a request and its answers).
    func record(_ frames: [(device: EUI64, frame: TracedFrame)]) {
        for (device, frame) in frames { record(device, frame) }
    }

    /// A device's first frame since its ring was made or dropped: the ring joins the order and
    /// the oldest rings beyond the limit go.
    private func start(_ device: EUI64, with frame: TracedFrame, in shard: Shard) {
        let maxDevices = self.maxDevices
        // Rings dropped here are freed after the locks, not under them.
        var released: [Ring] = []
        membership.withLock { membership in
            // Another thread may have made it since the shard was looked at: checked again.
            let started = shard.rings.withLock { rings -> Bool in
                if rings[device] != nil {
                    rings[device]?.append(frame)
                    return false
                }
                var ring = Ring()
                ring.append(frame)
                rings[device] = ring
                return true
            }
            guard started else { return }
            membership.order.append(device)
            while membership.order.count - membership.dropped > maxDevices {
                let oldest = membership.order[membership.dropped]
                membership.dropped += 1
                if let ring = self.shard(oldest).rings.withLock({ $0.removeValue(forKey: oldest) }) { released.append(ring) }
            }
            if membership.dropped > 4096 {
                membership.order.removeFirst(membership.dropped)
                membership.dropped = 0
            }
        }
    }

    func frames(_ device: EUI64) -> [TracedFrame] { shard(device).rings.withLock { $0[device]?.inOrder ?? [] } }

    /// Change of Tenancy: the devices' frames recorded at or before `cutoff` go from memory in the
    /// same step as from the store (a trace must not show the prior occupant's messages or UTRNs).
    /// Device Management frames stay: they carry the change itself, no occupant's data.
    func forget(_ devices: some Sequence<EUI64>, recordedUpTo cutoff: Timestamp) {
        for device in devices {
            shard(device).rings.withLock { rings in
                guard let ring = rings[device] else { return }
                var kept = Ring()
                for frame in ring.inOrder where frame.time > cutoff || frame.cluster == ZCLClusterID.deviceManagement { kept.append(frame) }
                rings[device] = kept
            }
        }
    }
}

extension Engine {
    /// Sets where frames devices send go: the HAN server's attached links.
    public func setFrameSink(_ sink: @escaping @Sendable (OutgoingZCL) -> Void) { state.withLock { $0.frameSink = sink } }

    /// Sets how a frame goes to one link only (link fault rules: each link's leg on its own).
    func setLinkSink(_ sink: @escaping @Sendable (OutgoingZCL, Int) -> Void) { state.withLock { $0.linkSink = sink } }

    /// A rig's frame reached `device`: trace it.
    public func traceIncoming(device: EUI64, from source: EUI64, cluster: UInt16, zcl: [UInt8]) {
        let now = self.now()
        traces.record(device, TracedFrame(time: now, direction: .incoming, peer: source, cluster: cluster, zcl: zcl))
        publishFrame(device: device, direction: .incoming, peer: source, cluster: cluster, zcl: zcl, now: now)
    }

    /// A rig's frame to `device`, traced with the answers it got (``emit(_:deliver:answering:deliverLater:)``).
    public struct IncomingFrame: Sendable {
        public var device: EUI64
        public var peer: EUI64
        public var cluster: UInt16
        public var zcl: [UInt8]
        public init(device: EUI64, peer: EUI64, cluster: UInt16, zcl: [UInt8]) {
            self.device = device; self.peer = peer; self.cluster = cluster; self.zcl = zcl
        }
    }

    /// A device sends frames: traced, shown to every link attached to the sender, and handed to the
    /// receiving device when it is one of ours. Call on the blocking pool (the receiver may write),
    /// or give `deliverLater`, which runs a delivery to one of ours where it may block.
    /// `incoming`, the request these frames answer, is traced first, at the same time (the HAN's hot
    /// path: one clock read per round trip; each frame takes only its device's trace shard lock).
    /// Returns why frames were not sent: a meter's message it could not keep (see ``keepSent(_:)``).
    @discardableResult
    public func emit(_ frames: [OutgoingZCL], deliver: Bool = true, answering incoming: IncomingFrame? = nil,
                     deliverLater: (@Sendable (@escaping @Sendable () -> Void) -> Void)? = nil) -> [any Error] {
        guard !frames.isEmpty || incoming != nil else { return [] }
        // One lock for the sink, the time and which receivers are ours: this runs for every answer.
        let (sink, now, local) = state.read { state in
            (state.frameSink, state.clock.now(real: realNow()), deliver ? frames.map { state.devices[$0.to] != nil } : [])
        }
        if let incoming {
            traces.record(incoming.device, TracedFrame(time: now, direction: .incoming, peer: incoming.peer, cluster: incoming.cluster, zcl: incoming.zcl))
        }
        var withheld: [any Error] = []
        var sent: [(index: Int, outgoing: OutgoingZCL)] = []
        for (index, var outgoing) in frames.enumerated() {
            if let error = keepSent(outgoing) {
                withheld.append(error)
                continue
            }
            let bytes = outgoing.frame.encoded()
            outgoing.encodedZCL = bytes
            traces.record(outgoing.from, TracedFrame(time: now, direction: .outgoing, peer: outgoing.to, cluster: outgoing.cluster, zcl: bytes))
            sent.append((index, outgoing))
        }
        if let incoming {
            publishFrame(device: incoming.device, direction: .incoming, peer: incoming.peer, cluster: incoming.cluster, zcl: incoming.zcl, now: now)
        }
        for (index, outgoing) in sent {
            let bytes = outgoing.zcl
            publishFrame(device: outgoing.from, direction: .outgoing, peer: outgoing.to, cluster: outgoing.cluster, zcl: bytes, now: now)
            let isLocal = deliver && local[index]
            if faults.isActive {
                // The trace keeps what the device sent; the rules decide what reaches the air.
                let sending = outgoing
                impair(device: outgoing.from, peer: outgoing.to, direction: .fromDevice, cluster: outgoing.cluster, zcl: bytes) { [self] zcl in
                    var sent = sending
                    sent.encodedZCL = zcl
                    sendToLinks(sent)
                    if isLocal { receiveImpaired(to: sent.to, from: sent.from, cluster: sent.cluster, zcl: zcl) }
                }
                continue
            }
            sink?(outgoing)
            guard isLocal else { continue }
            if let deliverLater {
                deliverLater { [self] in deliverInternally(to: outgoing.to, from: outgoing.from, cluster: outgoing.cluster, zcl: bytes) }
            } else {
                deliverInternally(to: outgoing.to, from: outgoing.from, cluster: outgoing.cluster, zcl: bytes)
            }
        }
        return withheld
    }

    /// A frame from one emulated device reaches another through the receiver's rules too.
    private func receiveImpaired(to target: EUI64, from source: EUI64, cluster: UInt16, zcl: [UInt8]) {
        guard faults.isActive else { return deliverInternally(to: target, from: source, cluster: cluster, zcl: zcl) }
        impair(device: target, peer: source, direction: .toDevice, cluster: cluster, zcl: zcl) { [self] zcl in
            deliverInternally(to: target, from: source, cluster: cluster, zcl: zcl)
        }
    }

    /// A meter keeps the messages it sends, before it sends them, so that GetLastMessage can repeat
    /// the last one. Returns the store's error when it could not: the message is then not sent
    /// (logged), so what was sent and what is kept never differ.
    private func keepSent(_ outgoing: OutgoingZCL) -> (any Error)? {
        let header = outgoing.frame.header
        guard outgoing.cluster == ZCLClusterID.messaging, header.frameType == .clusterSpecific, header.direction == .serverToClient,
              header.commandID == MessagingCommandID.displayMessage, device(outgoing.from)?.type.isMeterSide == true,
              let message = try? outgoing.frame.decodePayload(as: DisplayMessage.self) else { return nil }
        do {
            _ = try runMessaging(Messaging(device: outgoing.from), .sending(message, now: now()), device: outgoing.from)
            return nil
        } catch {
            logger.error("a meter could not keep the message it was to send; it was not sent", metadata: [
                "event": "han.storeFailed", "device_id": .string(outgoing.from.description), "command": "DisplayMessage",
                "peer": .string(outgoing.to.description), "error": .string("\(error)"),
            ])
            return error
        }
    }

    /// Sets what happens to the links of a device that is removed: the HAN server closes them.
    public func setLinkCloser(_ closer: @escaping @Sendable (EUI64) -> Void) { state.withLock { $0.linkCloser = closer } }

    /// A frame from one emulated device to another, e.g. a PPMID's top-up to its ESME.
    func deliverInternally(to target: EUI64, from source: EUI64, cluster: UInt16, zcl: [UInt8]) {
        let now = self.now()
        traces.record(target, TracedFrame(time: now, direction: .incoming, peer: source, cluster: cluster, zcl: zcl))
        publishFrame(device: target, direction: .incoming, peer: source, cluster: cluster, zcl: zcl, now: now)
        switch handleZCL(deviceID: target, source: source, profile: ZCLProfileID.smartEnergy, cluster: cluster, zcl: zcl) {
        case .now(let replies): emit(replies)
        case .blocking(let work): emit(work())
        }
    }

    private func publishFrame(device: EUI64, direction: FrameDirection, peer: EUI64, cluster: UInt16, zcl: [UInt8], now: Timestamp) {
        guard events.hasSubscribers(for: .hanFrame) else { return }
        var data = FrameNames.describe(cluster: cluster, zcl: zcl)
        data["direction"] = .string(direction.rawValue)
        data["peer"] = .string(peer.description)
        events.publish(.hanFrame, device: device, time: now, data: data, log: false)
    }

    /// The last `limit` frames of `device`, oldest first (shaped for the control API in ControlMethods+HAN).
    public func tracedFrames(_ device: EUI64, limit: Int) -> [TracedFrame] { Array(traces.frames(device).suffix(limit)) }
}

/// Names for frames in traces and events, so people read `DisplayMessage`, not `0x00`.
enum FrameNames {
    static let clusters: [UInt16: String] = [
        ZCLClusterID.basic: "Basic", ZCLClusterID.otaUpgrade: "OTA Upgrade", ZCLClusterID.metering: "Metering",
        ZCLClusterID.messaging: "Messaging", ZCLClusterID.prepayment: "Prepayment", ZCLClusterID.deviceManagement: "Device Management",
    ]

    /// Cluster-specific command names by (cluster, server-to-client, command ID).
    static let commands: [String: String] = [
        "0703/1/00": "DisplayMessage", "0703/1/01": "CancelMessage", "0703/1/03": "CancelAllMessages",
        "0703/0/00": "GetLastMessage", "0703/0/01": "MessageConfirmation",
        "0708/1/00": "PublishChangeOfTenancy", "0708/1/01": "PublishChangeOfSupplier",
        "0705/0/04": "ConsumerTopUp", "0705/0/08": "GetTopUpLog", "0705/0/0A": "GetDebtRepaymentLog",
        "0705/1/03": "ConsumerTopUpResponse", "0705/1/05": "PublishTopUpLog", "0705/1/06": "PublishDebtLog",
        "0019/1/00": "ImageNotify", "0019/0/01": "QueryNextImageRequest", "0019/1/02": "QueryNextImageResponse",
        "0019/0/03": "ImageBlockRequest", "0019/1/05": "ImageBlockResponse", "0019/0/06": "UpgradeEndRequest",
        "0019/1/07": "UpgradeEndResponse",
    ]

    static func describe(cluster: UInt16, zcl: [UInt8]) -> [String: EventValue] {
        var data: [String: EventValue] = [
            "cluster": .string(upperHex(cluster, width: 4)), "clusterName": .string(clusters[cluster] ?? "unknown"),
            "zcl": .string(zcl.map { upperHex($0, width: 2) }.joined()),
        ]
        guard let frame = try? ZCLFrame(decoding: zcl) else {
            data["command"] = "malformed"
            return data
        }
        data["sequence"] = .int(Int64(frame.header.sequenceNumber))
        if frame.header.frameType == .global {
            let name: String = switch frame.header.commandID {
            case 0x00: "ReadAttributes"
            case 0x01: "ReadAttributesResponse"
            case 0x02: "WriteAttributes"
            case 0x04: "WriteAttributesResponse"
            case 0x0B: "DefaultResponse"
            default: "Global 0x" + upperHex(frame.header.commandID, width: 2)
            }
            data["command"] = .string(name)
            if frame.header.commandID == 0x0B, let response = try? frame.decodePayload(as: DefaultResponse.self) {
                data["status"] = .string(ZCLStatus.describe(response.statusCode))
            }
        } else {
            let key = "\(upperHex(cluster, width: 4))/\(frame.header.direction == .serverToClient ? 1 : 0)/\(upperHex(frame.header.commandID, width: 2))"
            data["command"] = .string(commands[key] ?? "Command 0x" + upperHex(frame.header.commandID, width: 2))
        }
        return data
    }
}
