import SMETSCore
import SMETSDevices
import SMETSWire

extension FuzzTarget {
    /// One HAN link's protocol machine driven through any sequence of what can happen to a link.
    ///
    /// Input: a program, one operation per byte (low 4 bits; the high bits are its argument): the
    /// link opens (admitted or not), bytes arrive (the next byte is a length, then that many bytes of
    /// stream), the identity check answers (role, known device, type), the device takes the link or
    /// not, the HELLO timer fires, a device is removed, a reply is routed or finishes, the link closes.
    /// Properties, from han-link.md and what the server relies on: nothing is sent, dispatched, asked
    /// or registered once the link closed; every closing ERROR is followed by the close; WELCOME goes
    /// out once, after the link was attached (and described) on the device; DATA is dispatched only to the attached device's
    /// endpoint; the HELLO timer is started once and cancelled only while running; what the link
    /// holds (admission, its place on a device, the timer) is given back exactly once when it closes.
    public static let hanLinkSequence = FuzzTarget(
        name: "han-link-sequence",
        summary: "HANLinkMachine under any order of opens, bytes, answers, timers, removals and closes"
    ) { bytes in
        var input = FuzzInput(bytes)
        let attachedDevice = EUI64(0x00DB_1234_5678_0005)
        let implied = input.byte() & 1 == 1 ? attachedDevice : nil
        var machine = HANLinkMachine(configuration: .init(impliedDevice: implied, maxFrameLength: 256,
                                                          helloTimeout: .seconds(10), maxConnections: 4, maxLinksPerDevice: 2))
        var ledger = LinkLedger()
        var steps = 0
        while input.index < bytes.count, steps < 512 {
            steps += 1
            let op = input.byte()
            let argument = op >> 4
            let actions: [HANLinkMachine.Action]
            switch op & 0x0F {
            case 0: actions = machine.linkOpened(admitted: argument & 1 == 0)
            case 1, 2, 3:
                let count = Int(input.byte())
                actions = machine.received((0..<count).map { _ in input.byte() })
            case 4:
                let caller = HANLinkMachine.Caller(role: "rig", uid: 0, mayAttach: argument & 1 == 0)
                let facts = HANLinkMachine.DeviceFacts(type: DeviceType.allCases[Int(argument >> 1) % DeviceType.allCases.count],
                                                       mode: .smets2, manufacturerCode: 0x1234, imageType: 0x0101,
                                                       firmware: FirmwareVersion(0x0102_0300))
                actions = machine.identified(caller: caller, device: argument & 2 == 0 ? facts : nil)
            case 5: actions = machine.registered(argument & 1 == 0)
            case 6:
                actions = machine.helloTimeoutFired()
                ledger.timerRunning = false  // a timer that fired is over (a late one after a cancel too)
            case 7: actions = machine.deviceRemoved(argument & 1 == 0 ? ledger.registered ?? attachedDevice : EUI64(UInt64(argument)))
            case 8:
                _ = machine.route(blocking: argument & 1 == 1)
                actions = []
            case 9:
                machine.queuedReplyFinished()
                actions = []
            case 10:
                actions = machine.linkClosed()
                ledger.closed = true
            default: actions = []
            }
            if let failure = ledger.check(actions, machine: machine) { return "step \(steps) (op \(op)): \(failure)" }
        }
        // Whatever happened, the server closes the link in the end: everything held comes back.
        let last = machine.linkClosed()
        ledger.closed = true
        if let failure = ledger.check(last, machine: machine) { return "final close: \(failure)" }
        return ledger.leftover()
    }
}

/// What the actions of one link have taken and given back, checked as they come.
struct LinkLedger {
    var closed = false
    var admissionHeld = false
    var admissionsReleased = 0
    var timerRunning = false
    var timersStarted = 0
    var asked: EUI64?
    var pendingRegistration: EUI64?
    var registered: EUI64?
    var welcomes = 0
    var awaitingClose = false

    mutating func check(_ actions: [HANLinkMachine.Action], machine: HANLinkMachine) -> String? {
        for action in actions {
            if awaitingClose, action != .close { return "a closing ERROR was followed by \(action), not the close" }
            switch action {
            case .readPeerCredentials:
                if closed { return "credentials read after the close" }
                admissionHeld = true
            case .startHelloTimer:
                if timerRunning || timersStarted > 0 { return "the HELLO timer started twice" }
                timerRunning = true
                timersStarted += 1
            case .cancelHelloTimer:
                if !timerRunning { return "a HELLO timer cancelled while not running" }
                timerRunning = false
            case let .send(frame):
                if closed { return "\(frame.type) sent after the close" }
                switch frame {
                case let .error(error): awaitingClose = error.code.closesConnection
                case let .welcome(welcome):
                    welcomes += 1
                    if welcomes > 1 { return "WELCOME sent twice" }
                    if welcome.device != registered { return "WELCOME for \(welcome.device) before the link was attached to it" }
                default: return "the daemon sent a \(frame.type) frame"
                }
            case .close:
                awaitingClose = false
                closed = true
            case let .identify(target):
                if closed { return "identify after the close" }
                if asked != nil { return "identify asked twice" }
                asked = target
            case let .register(device):
                if closed { return "register after the close" }
                if device != asked { return "register \(device) for a link that asked about \(String(describing: asked))" }
                pendingRegistration = device
            case let .detach(device):
                if device != registered { return "detach \(device), which the link was not registered on" }
                registered = nil
            case .releaseAdmission:
                if !admissionHeld { return "admission released without being held" }
                admissionHeld = false
                admissionsReleased += 1
            case let .dispatch(data, device):
                if closed { return "DATA dispatched after the close" }
                if device != registered { return "DATA dispatched to \(device), not the attached device" }
                if data.destination != device || data.destinationEndpoint != HANLink.deviceEndpoint { return "DATA for \(data.destination) dispatched to \(device)" }
            case let .publishAttached(device, _):
                // registered(true): from here the link holds a place on the device, then WELCOME leaves.
                if closed { return "attached after the close" }
                if device != pendingRegistration { return "attached to \(device) without a registration" }
                registered = device
                pendingRegistration = nil
            case .publishAccessRefused: break
            }
        }
        if awaitingClose { return "a closing ERROR without the close" }
        if closed, machine.state != .closed { return "closed, but the state is \(machine.state)" }
        return nil
    }

    func leftover() -> String? {
        if timerRunning { return "the HELLO timer still runs after the close" }
        if registered != nil { return "the link is still registered on \(registered!) after the close" }
        if admissionHeld { return "the admission is still held after the close" }
        if admissionsReleased > 1 { return "the admission was released \(admissionsReleased) times" }
        return nil
    }
}
