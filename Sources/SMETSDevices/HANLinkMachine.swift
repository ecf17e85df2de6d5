import SMETSCore
import SMETSWire

/// One HAN link's protocol (`docs/han-link.md`, version 1) as a value: admission, the HELLO checks
/// and WELCOME, DATA addressing, every ERROR code and whether it closes the link, the hello timeout,
/// and the order of a link's answers while some wait for the blocking pool.
///
/// Each input returns the actions to carry out, in order; the NIO handler does nothing else. Two
/// inputs need facts only the daemon has, so the machine asks for them with an action and waits for
/// the answer before it reads further frames: ``Action/identify(target:)`` is answered with
/// ``identified(caller:device:)``, and ``Action/register(device:)`` with ``registered(_:)``.
/// The answer is expected before the next input, as the handler gives it in the same call.
public struct HANLinkMachine: Sendable {
    /// What a link is allowed, from `devices/smetsd.json` and the socket it came in on.
    public struct Configuration: Hashable, Sendable {
        /// The device of a per-device socket; nil on `han.sock`, where HELLO names the target.
        public var impliedDevice: EUI64?
        /// The largest length field accepted (`maxHANFrameBytes`).
        public var maxFrameLength: Int
        /// Time allowed before HELLO (`helloTimeoutSeconds`).
        public var helloTimeout: Duration
        /// HAN connections at once (`maxHANConnections`), named in the ERROR 6 of an unadmitted link.
        public var maxConnections: Int
        /// Links attached to one device at once (`maxLinksPerDevice`), named in its ERROR 6.
        public var maxLinksPerDevice: Int

        public init(impliedDevice: EUI64? = nil, maxFrameLength: Int = HANLink.maxFrameLength,
                    helloTimeout: Duration = .seconds(10), maxConnections: Int = 1024, maxLinksPerDevice: Int = 16) {
            self.impliedDevice = impliedDevice
            self.maxFrameLength = maxFrameLength
            self.helloTimeout = helloTimeout
            self.maxConnections = maxConnections
            self.maxLinksPerDevice = maxLinksPerDevice
        }
    }

    /// Who is on the other end, as the access policy sees it at HELLO time.
    public struct Caller: Hashable, Sendable {
        /// The role's name (`rig`, `map:MAP-ALPHA`, `anonymous`).
        public var role: String
        /// The caller's uid from `SO_PEERCRED`, nil when the kernel did not say.
        public var uid: UInt32?
        /// Whether the role may attach to devices (admin and rig).
        public var mayAttach: Bool

        public init(role: String, uid: UInt32?, mayAttach: Bool) {
            self.role = role
            self.uid = uid
            self.mayAttach = mayAttach
        }
    }

    /// What WELCOME tells a rig about the device it attached to, read when HELLO arrives.
    public struct DeviceFacts: Hashable, Sendable {
        public var type: DeviceType
        public var mode: SMETSMode
        public var manufacturerCode: UInt16
        public var imageType: UInt16
        /// The firmware the device runs (han-link.md rev 1.1: never the CPL's fictitious identity).
        public var firmware: FirmwareVersion

        public init(type: DeviceType, mode: SMETSMode, manufacturerCode: UInt16, imageType: UInt16, firmware: FirmwareVersion) {
            self.type = type
            self.mode = mode
            self.manufacturerCode = manufacturerCode
            self.imageType = imageType
            self.firmware = firmware
        }
    }

    /// Where a link is in its life.
    public enum State: Hashable, Sendable {
        /// Admitted, before HELLO.
        case awaitingHello
        /// A HELLO for `target` waits for ``identified(caller:device:)``.
        case identifying(HANHello, target: EUI64)
        /// A HELLO passed its checks and waits for ``registered(_:)``: does the device have room?
        case registering(HANHello, welcome: HANWelcome)
        /// WELCOME was sent: DATA frames go to this device.
        case attached(EUI64)
        /// A closing ERROR was sent, the hello timeout fired or the link closed: nothing more is read or sent.
        case closed
    }

    /// One thing for the handler to do.
    public enum Action: Hashable, Sendable {
        /// Read the peer's credentials (`SO_PEERCRED`), for the role check at HELLO.
        case readPeerCredentials
        case startHelloTimer(Duration)
        case cancelHelloTimer
        case send(HANFrame)
        /// Close the link; an ERROR that closes it is sent first, as its own action.
        case close
        /// A question: who is the caller, and what is `target` (nil for no such device)?
        /// Answer with ``HANLinkMachine/identified(caller:device:)``.
        case identify(target: EUI64)
        /// A question: add this link to the device's links if it has room (`maxLinksPerDevice`).
        /// Answer with ``HANLinkMachine/registered(_:)``.
        case register(device: EUI64)
        /// Remove this link from the device's links.
        case detach(device: EUI64)
        /// Give the link's place under `maxHANConnections` back.
        case releaseAdmission
        /// Hand a rig's DATA frame to the device: trace it, let the device handle its ZCL, then ask
        /// ``HANLinkMachine/route(blocking:)`` where the answers go.
        case dispatch(HANData, to: EUI64)
        /// Publish `han.attached` for `device`, attached by `rig`.
        case publishAttached(device: EUI64, rig: EUI64)
        /// Publish `access.refused` for a HELLO from this caller.
        case publishAccessRefused(Caller)
    }

    /// How a dispatched frame's answers go out.
    public enum ReplyRoute: Hashable, Sendable {
        /// Nothing is waiting: send the answers at once.
        case emitNow
        /// Queue the work behind what is in flight and call ``HANLinkMachine/queuedReplyFinished()`` when it is done.
        case enqueue
    }

    public let configuration: Configuration
    public private(set) var state: State
    /// Answers queued behind blocking work and not yet sent.
    public private(set) var repliesInFlight = 0
    private var decoder: HANFrameDecoder
    private var opened = false
    private var admitted = false
    private var helloTimerRunning = false
    /// The device this link was added to, detached when the link closes.
    private var registeredDevice: EUI64?

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.state = .awaitingHello
        self.decoder = HANFrameDecoder(maxFrameLength: configuration.maxFrameLength)
    }

    /// The link is open; `admitted` says whether it got a place under `maxHANConnections`.
    public mutating func linkOpened(admitted: Bool) -> [Action] {
        guard !opened, state == .awaitingHello else { return [] }
        opened = true
        guard admitted else {
            // Sent at once, before any HELLO: the rig learns why instead of waiting for a timeout.
            return fail(.tooManyConnections, "too many HAN connections (maxHANConnections \(configuration.maxConnections))")
        }
        self.admitted = true
        helloTimerRunning = true
        return [.readPeerCredentials, .startHelloTimer(configuration.helloTimeout)]
    }

    /// Bytes from the rig, however the stream splits them.
    public mutating func received(_ bytes: some Collection<UInt8>) -> [Action] {
        guard state != .closed else { return [] }
        decoder.append(bytes)
        return readFrames()
    }

    /// The answer to ``Action/identify(target:)``. HELLO is checked in the order `han-link.md` gives:
    /// role (7), version (1), target on a per-device socket (2), known device (2); the link limit (6) comes with ``registered(_:)``.
    public mutating func identified(caller: Caller, device: DeviceFacts?) -> [Action] {
        guard case let .identifying(hello, target) = state else { return [] }
        guard caller.mayAttach else {
            return [.publishAccessRefused(caller)]
                + fail(.notAuthorised, "the \(caller.role) role may not attach to devices; ask the lab operator for the rig role")
        }
        guard hello.version == HANLink.version else {
            return fail(.unsupportedVersion, "HAN link version \(hello.version) is not supported; this daemon speaks version \(HANLink.version)")
        }
        if let implied = configuration.impliedDevice, hello.target != .zero, hello.target != implied {
            return fail(.unknownDevice, "this socket serves \(implied), not \(hello.target)")
        }
        guard let device else { return fail(.unknownDevice, "no device \(target)") }
        let welcome = HANWelcome(device: target, deviceType: device.type, smetsMode: device.mode,
                                 manufacturerCode: device.manufacturerCode, imageType: device.imageType, firmware: device.firmware)
        state = .registering(hello, welcome: welcome)
        return [.register(device: target)]
    }

    /// The answer to ``Action/register(device:)``: whether the device had room for this link.
    /// On success the link is attached, WELCOME goes out, and frames that came after HELLO are read.
    public mutating func registered(_ accepted: Bool) -> [Action] {
        guard case let .registering(hello, welcome) = state else { return [] }
        guard accepted else {
            return fail(.tooManyConnections, "\(welcome.device) already has \(configuration.maxLinksPerDevice) links attached (maxLinksPerDevice)")
        }
        registeredDevice = welcome.device
        state = .attached(welcome.device)
        var actions: [Action] = []
        if helloTimerRunning {
            helloTimerRunning = false
            actions.append(.cancelHelloTimer)
        }
        // Attached (and described to han.links) before WELCOME leaves: a rig that asks the control API
        // about its link as soon as it reads WELCOME must find it.
        actions += [.publishAttached(device: welcome.device, rig: hello.rigNode), .send(.welcome(welcome))]
        return actions + readFrames()
    }

    /// `helloTimeoutSeconds` passed: a link still without WELCOME is closed, without an ERROR.
    public mutating func helloTimeoutFired() -> [Action] {
        helloTimerRunning = false
        switch state {
        case .awaitingHello, .identifying, .registering:
            state = .closed
            return [.close]
        case .attached, .closed:
            return []
        }
    }

    /// `device` was removed: a link attached to it is told (ERROR 2) and closed.
    public mutating func deviceRemoved(_ device: EUI64) -> [Action] {
        guard case .attached(device) = state else { return [] }
        return fail(.unknownDevice, "device \(device) was removed")
    }

    /// The link closed, whoever closed it: what it held is given back, once.
    public mutating func linkClosed() -> [Action] {
        state = .closed
        var actions: [Action] = []
        if helloTimerRunning { actions.append(.cancelHelloTimer) }
        if let registeredDevice { actions.append(.detach(device: registeredDevice)) }
        if admitted { actions.append(.releaseAdmission) }
        helloTimerRunning = false
        registeredDevice = nil
        admitted = false
        return actions
    }

    /// A dispatched frame was handled: `blocking` when its answers wait for the blocking pool.
    /// Answers leave in the order the frames came, so anything behind blocking work queues too.
    public mutating func route(blocking: Bool) -> ReplyRoute {
        guard blocking || repliesInFlight > 0 else { return .emitNow }
        repliesInFlight += 1
        return .enqueue
    }

    /// Queued work from ``route(blocking:)`` finished, its answers sent or failed.
    public mutating func queuedReplyFinished() {
        repliesInFlight = max(0, repliesInFlight - 1)
    }

    // MARK: Frames

    /// Reads frames while the link can act on them; stops at a question, a closing error or the end of the bytes.
    private mutating func readFrames() -> [Action] {
        var actions: [Action] = []
        while true {
            switch state {
            case .awaitingHello, .attached: break
            case .identifying, .registering, .closed: return actions
            }
            let frame: HANFrame?
            do {
                frame = try decoder.next()
            } catch {
                return actions + fail(error.code, error.description)
            }
            guard let frame else { return actions }
            actions += handle(frame)
        }
    }

    private mutating func handle(_ frame: HANFrame) -> [Action] {
        switch (frame, state) {
        case let (.hello(hello), .awaitingHello):
            let target = configuration.impliedDevice ?? hello.target
            state = .identifying(hello, target: target)
            return [.identify(target: target)]
        case let (.hello, .attached(device)):
            return fail(.notAttached, "already attached to \(device); open another link for another device")
        case (.data, .awaitingHello):
            return fail(.notAttached, "send HELLO first")
        case let (.data(data), .attached(device)):
            guard data.destination == device, data.destinationEndpoint == HANLink.deviceEndpoint else {
                return fail(.notAttached, "this link is attached to \(device) endpoint \(HANLink.deviceEndpoint), not \(data.destination) endpoint \(data.destinationEndpoint)")
            }
            return [.dispatch(data, to: device)]
        case (.welcome, _), (.error, _):
            return fail(.malformedFrame, "a rig does not send \(frame.type) frames")
        case (.hello, _), (.data, _):
            // readFrames reads only while awaiting HELLO or attached.
            return []
        }
    }

    /// The ERROR the contract names for `code`, and the close when the code closes the link.
    private mutating func fail(_ code: HANErrorCode, _ reason: String) -> [Action] {
        let error = Action.send(.error(HANError(code: code, reason: reason)))
        guard code.closesConnection else { return [error] }
        state = .closed
        return [error, .close]
    }
}
