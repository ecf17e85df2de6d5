import SMETSCore
import SMETSWire
import Testing
@testable import SMETSDevices

private typealias Action = HANLinkMachine.Action

private let ppmid = EUI64(0x00DB_1234_5678_90A1)
private let esme = EUI64(0x00DB_1234_5678_90A2)
private let rig = EUI64(0x00DB_0000_0000_0001)
private let rigCaller = HANLinkMachine.Caller(role: "rig", uid: 1000, mayAttach: true)
private let mapCaller = HANLinkMachine.Caller(role: "map:MAP-ALPHA", uid: 1001, mayAttach: false)
private let ppmidFacts = HANLinkMachine.DeviceFacts(type: .ppmid, mode: .smets2, manufacturerCode: 0x1234, imageType: 0x5678,
                                                    firmware: FirmwareVersion(0x0102_030A))
private let esmeFacts = HANLinkMachine.DeviceFacts(type: .esme, mode: .smets2, manufacturerCode: 0x4321, imageType: 0x0001,
                                                   firmware: FirmwareVersion(0x0001_0000))
private let ppmidWelcome = HANWelcome(device: ppmid, deviceType: .ppmid, smetsMode: .smets2, manufacturerCode: 0x1234,
                                      imageType: 0x5678, firmware: FirmwareVersion(0x0102_030A))

private func hello(_ target: EUI64, version: UInt8 = HANLink.version) -> HANFrame {
    .hello(HANHello(version: version, rigNode: rig, target: target))
}

private func data(to destination: EUI64 = ppmid, endpoint: UInt8 = HANLink.deviceEndpoint, from source: EUI64 = rig,
                  sequence: UInt8 = 1) -> HANData {
    HANData(source: source, destination: destination, clusterID: ZCLClusterID.basic, sourceEndpoint: 0x0A,
            destinationEndpoint: endpoint, zcl: [0x00, sequence, 0x00, 0x00, 0x00])
}

private func stream(_ frames: HANFrame...) -> [UInt8] { frames.flatMap { $0.encoded() } }

/// The ERROR codes among `actions`, in order.
private func errorCodes(_ actions: [Action]) -> [HANErrorCode] {
    actions.compactMap { if case let .send(.error(error)) = $0 { error.code } else { nil } }
}

/// The reason of the one ERROR among `actions`.
private func reason(_ actions: [Action]) -> String? {
    actions.lazy.compactMap { if case let .send(.error(error)) = $0 { error.reason } else { nil } }.first
}

/// Whether `actions` are exactly ERROR `code` and, when the code says so, the close.
private func isError(_ code: HANErrorCode, closing: Bool, _ actions: [Action]) -> Bool {
    errorCodes(actions) == [code] && actions.count == (closing ? 2 : 1) && (actions.last == .close) == closing
}

/// A link driven the way `HANChannelHandler` drives it: the machine's questions are answered at once
/// from a table of devices and a registry with or without room, and every action is kept, questions included.
private struct Link {
    var machine: HANLinkMachine
    var caller = rigCaller
    var devices: [EUI64: HANLinkMachine.DeviceFacts] = [ppmid: ppmidFacts, esme: esmeFacts]
    var deviceHasRoom = true

    init(_ configuration: HANLinkMachine.Configuration = .init()) {
        machine = HANLinkMachine(configuration: configuration)
    }

    /// A link that has been admitted and has received WELCOME from `device`.
    static func attached(to device: EUI64 = ppmid, _ configuration: HANLinkMachine.Configuration = .init()) -> Link {
        var link = Link(configuration)
        _ = link.open()
        _ = link.receive(hello(device))
        return link
    }

    mutating func open(admitted: Bool = true) -> [Action] { answer(machine.linkOpened(admitted: admitted)) }
    mutating func receive(_ frames: HANFrame...) -> [Action] { answer(machine.received(frames.flatMap { $0.encoded() })) }
    mutating func receive(bytes: [UInt8]) -> [Action] { answer(machine.received(bytes)) }

    mutating func answer(_ actions: [Action]) -> [Action] {
        var done: [Action] = []
        for action in actions {
            done.append(action)
            switch action {
            case let .identify(target):
                done += answer(machine.identified(caller: caller, device: devices[target]))
            case .register:
                done += answer(machine.registered(deviceHasRoom))
            default:
                break
            }
        }
        return done
    }
}

@Suite("HAN link machine: admission and HELLO")
struct HANLinkAttachTests {
    @Test("an admitted link reads its peer and starts the hello timer")
    func admitted() {
        var machine = HANLinkMachine(configuration: .init(helloTimeout: .milliseconds(2500)))
        #expect(machine.linkOpened(admitted: true) == [.readPeerCredentials, .startHelloTimer(.milliseconds(2500))])
        #expect(machine.state == .awaitingHello)
    }

    @Test("a link over maxHANConnections gets ERROR 6 at once, is closed, and reads nothing more")
    func admissionRefused() {
        var link = Link(.init(maxConnections: 2))
        let actions = link.open(admitted: false)
        #expect(isError(.tooManyConnections, closing: true, actions))
        #expect(reason(actions)?.contains("maxHANConnections 2") == true)
        #expect(link.machine.state == .closed)
        #expect(link.receive(hello(ppmid)).isEmpty)
        // It never held a place, so it gives none back.
        #expect(link.machine.linkClosed().isEmpty)
    }

    @Test("HELLO asks who calls and what the target is, then for room, then sends WELCOME")
    func helloStepByStep() {
        var machine = HANLinkMachine(configuration: .init())
        _ = machine.linkOpened(admitted: true)
        #expect(machine.received(hello(ppmid).encoded()) == [.identify(target: ppmid)])
        #expect(machine.state == .identifying(HANHello(rigNode: rig, target: ppmid), target: ppmid))
        #expect(machine.identified(caller: rigCaller, device: ppmidFacts) == [.register(device: ppmid)])
        #expect(machine.registered(true) == [
            .cancelHelloTimer, .publishAttached(device: ppmid, rig: rig), .send(.welcome(ppmidWelcome)),
        ])
        #expect(machine.state == .attached(ppmid))
    }

    @Test("WELCOME carries version 1, the device and the facts the daemon gave")
    func welcomeFields() {
        var link = Link()
        _ = link.open()
        let welcomes = link.receive(hello(esme)).compactMap { if case let .send(.welcome(welcome)) = $0 { welcome } else { nil } }
        #expect(welcomes == [HANWelcome(version: 1, device: esme, deviceType: 1, smetsMode: 2, manufacturerCode: 0x4321,
                                        imageType: 0x0001, currentFileVersion: 0x0001_0000)])
    }

    @Test("ERROR 1: a HELLO of another version closes the link")
    func unsupportedVersion() {
        var link = Link()
        _ = link.open()
        let actions = link.receive(hello(ppmid, version: 2))
        #expect(actions.first == .identify(target: ppmid))
        #expect(isError(.unsupportedVersion, closing: true, Array(actions.dropFirst())))
        #expect(link.machine.state == .closed)
    }

    @Test("ERROR 2: a HELLO naming no device, or all zero on han.sock, closes the link", arguments: [esme, EUI64.zero])
    func unknownDevice(target: EUI64) {
        var link = Link()
        link.devices = [ppmid: ppmidFacts]
        _ = link.open()
        let actions = link.receive(hello(target))
        #expect(actions.first == .identify(target: target))
        #expect(isError(.unknownDevice, closing: true, Array(actions.dropFirst())))
        #expect(reason(actions) == "no device \(target)")
    }

    @Test("a per-device socket attaches to its device for an all-zero target or its own ID", arguments: [EUI64.zero, ppmid])
    func impliedDevice(target: EUI64) {
        var link = Link(.init(impliedDevice: ppmid))
        _ = link.open()
        let actions = link.receive(hello(target))
        #expect(actions.first == .identify(target: ppmid))
        #expect(actions.contains(.send(.welcome(ppmidWelcome))))
        #expect(link.machine.state == .attached(ppmid))
    }

    @Test("ERROR 2: a per-device socket refuses a HELLO naming another device, even one that exists")
    func impliedDeviceMismatch() {
        var link = Link(.init(impliedDevice: ppmid))
        _ = link.open()
        let actions = link.receive(hello(esme))
        #expect(!actions.contains(.register(device: esme)) && !actions.contains(.register(device: ppmid)))
        #expect(isError(.unknownDevice, closing: true, Array(actions.dropFirst())))
        #expect(reason(actions) == "this socket serves \(ppmid), not \(esme)")
    }

    @Test("ERROR 6: a device with maxLinksPerDevice links refuses one more, which is closed and never detached")
    func linkLimit() {
        var link = Link(.init(maxLinksPerDevice: 3))
        link.deviceHasRoom = false
        _ = link.open()
        let actions = link.receive(hello(ppmid))
        #expect(Array(actions.prefix(2)) == [.identify(target: ppmid), .register(device: ppmid)])
        #expect(isError(.tooManyConnections, closing: true, Array(actions.dropFirst(2))))
        #expect(reason(actions)?.contains("3 links attached") == true)
        #expect(link.machine.linkClosed() == [.cancelHelloTimer, .releaseAdmission])
    }

    @Test("ERROR 7: a role that may not attach is refused, published, closed, and never registered")
    func notAuthorised() {
        var link = Link()
        link.caller = mapCaller
        _ = link.open()
        let actions = link.receive(hello(ppmid))
        #expect(Array(actions.prefix(2)) == [.identify(target: ppmid), .publishAccessRefused(mapCaller)])
        #expect(isError(.notAuthorised, closing: true, Array(actions.dropFirst(2))))
        #expect(reason(actions)?.hasPrefix("the map:MAP-ALPHA role may not attach") == true)
    }

    /// HELLOs failing several checks (may attach, version, target, device exists, room), with the
    /// first failure in the documented order: role, version, target, device, room.
    static let checkOrderCases: [(Bool, UInt8, EUI64, Bool, Bool, HANErrorCode)] = [
        (false, 2, esme, false, false, .notAuthorised),
        (true, 2, esme, false, false, .unsupportedVersion),
        (true, 1, esme, false, false, .unknownDevice),        // the implied-target check, before the lookup
        (true, 1, .zero, false, false, .unknownDevice),       // the lookup
        (true, 1, .zero, true, false, .tooManyConnections),
    ]

    @Test("HELLO's checks come in the documented order", arguments: checkOrderCases)
    func checkOrder(mayAttach: Bool, version: UInt8, target: EUI64, deviceExists: Bool, room: Bool, expected: HANErrorCode) {
        var link = Link(.init(impliedDevice: ppmid))
        link.caller = HANLinkMachine.Caller(role: mayAttach ? "rig" : "anonymous", uid: nil, mayAttach: mayAttach)
        link.devices = deviceExists ? [ppmid: ppmidFacts] : [:]
        link.deviceHasRoom = room
        _ = link.open()
        #expect(errorCodes(link.receive(hello(target, version: version))) == [expected])
    }

    @Test("answers to questions nobody asked change nothing")
    func unaskedAnswers() {
        var machine = HANLinkMachine(configuration: .init())
        _ = machine.linkOpened(admitted: true)
        #expect(machine.identified(caller: rigCaller, device: ppmidFacts).isEmpty)
        #expect(machine.registered(true).isEmpty)
        #expect(machine.state == .awaitingHello)
        #expect(machine.linkOpened(admitted: true).isEmpty)
    }
}

@Suite("HAN link machine: frames")
struct HANLinkFrameTests {
    @Test("a DATA frame to the attached device, endpoint 1, is dispatched as it came, whatever its source")
    func dispatch() {
        var link = Link.attached()
        let frame = data(from: EUI64(0x00DB_0000_0000_0099))
        #expect(link.receive(.data(frame)) == [.dispatch(frame, to: ppmid)])
    }

    @Test("ERROR 5 keeps the link open: DATA before HELLO, and HELLO still attaches afterwards")
    func dataBeforeHello() {
        var link = Link()
        _ = link.open()
        let actions = link.receive(.data(data()))
        #expect(isError(.notAttached, closing: false, actions))
        #expect(link.machine.state == .awaitingHello)
        #expect(link.receive(hello(ppmid)).contains(.send(.welcome(ppmidWelcome))))
    }

    static let wrongAddresses: [(EUI64, UInt8)] = [(esme, 1), (ppmid, 2), (ppmid, 0), (.zero, 1)]

    @Test("ERROR 5 keeps the link open: a wrong destination or endpoint, then the next frame is dispatched",
          arguments: wrongAddresses)
    func wrongAddress(destination: EUI64, endpoint: UInt8) {
        var link = Link.attached()
        let actions = link.receive(.data(data(to: destination, endpoint: endpoint)))
        #expect(isError(.notAttached, closing: false, actions))
        #expect(reason(actions) == "this link is attached to \(ppmid) endpoint 1, not \(destination) endpoint \(endpoint)")
        #expect(link.receive(.data(data())) == [.dispatch(data(), to: ppmid)])
    }

    @Test("ERROR 5 keeps the link open: a second HELLO, even for another device, leaves the link attached where it was")
    func doubleHello() {
        var link = Link.attached()
        let actions = link.receive(hello(esme))
        #expect(isError(.notAttached, closing: false, actions))
        #expect(reason(actions)?.hasPrefix("already attached to \(ppmid)") == true)
        #expect(link.machine.state == .attached(ppmid))
        #expect(link.receive(.data(data())) == [.dispatch(data(), to: ppmid)])
    }

    @Test("ERROR 3: a rig sending WELCOME or ERROR is closed, before HELLO or after", arguments: [false, true])
    func rigSendsDaemonFrames(attached: Bool) {
        for frame in [HANFrame.welcome(ppmidWelcome), .error(HANError(code: .notAttached, reason: "echo"))] {
            var link = attached ? Link.attached() : Link()
            if !attached { _ = link.open() }
            let actions = link.receive(frame)
            #expect(isError(.malformedFrame, closing: true, actions))
            #expect(reason(actions) == "a rig does not send \(frame.type) frames")
        }
    }

    static let decoderFaultCases: [([UInt8], HANErrorCode)] = [
        ([0x00, 0x00], .malformedFrame),                                     // length 0
        ([0x01, 0x00, 0x42], .malformedFrame),                               // unknown frame type
        ([0x02, 0x00, 0x01, 0x01], .malformedFrame),                         // HELLO body not 17 bytes
        ([0x19, 0x00, 0x10] + [UInt8](repeating: 0, count: 24), .malformedFrame),  // DATA body under 25 bytes
        ([0x02, 0x00, 0x7F, 0x09], .malformedFrame),                         // ERROR with an undefined code
        ([0x01, 0x10], .frameTooLarge),                                      // length 4097
        ([0xFF, 0xFF], .frameTooLarge),
    ]

    @Test("a decoder fault gets the ERROR its fault names, and the close", arguments: decoderFaultCases)
    func decoderFaults(bytes: [UInt8], code: HANErrorCode) {
        for attached in [false, true] {
            var link = attached ? Link.attached() : Link()
            if !attached { _ = link.open() }
            #expect(isError(code, closing: true, link.receive(bytes: bytes)))
            #expect(link.machine.state == .closed)
        }
    }

    @Test("ERROR 4 follows maxHANFrameBytes when it is set lower than 4096")
    func lowerFrameLimit() {
        let frame = HANFrame.data(HANData(source: rig, destination: ppmid, clusterID: 0, zcl: [UInt8](repeating: 0, count: 60)))
        var strict = Link.attached(to: ppmid, .init(maxFrameLength: 64))
        #expect(isError(.frameTooLarge, closing: true, strict.receive(frame)))
        var lenient = Link.attached()
        #expect(lenient.receive(frame).count == 1)
    }

    @Test("after a closing ERROR nothing more is read, in the same read or later")
    func closedReadsNothing() {
        var link = Link.attached()
        let actions = link.receive(bytes: stream(.data(data(sequence: 1)), .welcome(ppmidWelcome), .data(data(sequence: 2))))
        #expect(actions.first == .dispatch(data(sequence: 1), to: ppmid))
        #expect(isError(.malformedFrame, closing: true, Array(actions.dropFirst())))
        #expect(link.receive(.data(data(sequence: 3))).isEmpty)
        #expect(link.receive(bytes: [0x00, 0x00]).isEmpty)
    }

    @Test("HELLO and DATA in one read: WELCOME goes out before the DATA is dispatched")
    func pipelinedHello() {
        var link = Link()
        _ = link.open()
        #expect(link.receive(bytes: stream(hello(ppmid), .data(data(sequence: 1)), .data(data(sequence: 2)))) == [
            .identify(target: ppmid), .register(device: ppmid), .cancelHelloTimer, .publishAttached(device: ppmid, rig: rig),
            .send(.welcome(ppmidWelcome)), .dispatch(data(sequence: 1), to: ppmid), .dispatch(data(sequence: 2), to: ppmid),
        ])
    }

    @Test("frames after HELLO wait for the answers to its questions")
    func framesWaitForAnswers() {
        var machine = HANLinkMachine(configuration: .init())
        _ = machine.linkOpened(admitted: true)
        #expect(machine.received(stream(hello(ppmid), .data(data()))) == [.identify(target: ppmid)])
        #expect(machine.received(data(sequence: 2).encodedFrame).isEmpty)
        #expect(machine.identified(caller: rigCaller, device: ppmidFacts) == [.register(device: ppmid)])
        #expect(Array(machine.registered(true).suffix(2)) == [.dispatch(data(), to: ppmid), .dispatch(data(sequence: 2), to: ppmid)])
    }

    @Test("a frame split into single bytes is read once it is whole")
    func byteByByte() {
        var machine = HANLinkMachine(configuration: .init())
        _ = machine.linkOpened(admitted: true)
        let bytes = hello(ppmid).encoded()
        for byte in bytes.dropLast() { #expect(machine.received([byte]).isEmpty) }
        #expect(machine.received([bytes.last!]) == [.identify(target: ppmid)])
    }
}

@Suite("HAN link machine: every ERROR code")
struct HANLinkErrorCodeTests {
    /// One way to provoke each code of `han-link.md`, from a fresh link.
    private static func provoke(_ code: HANErrorCode) -> [Action] {
        var link = Link(.init(impliedDevice: code == .unknownDevice ? ppmid : nil))
        switch code {
        case .unsupportedVersion:
            _ = link.open()
            return link.receive(hello(ppmid, version: 0))
        case .unknownDevice:
            _ = link.open()
            return link.receive(hello(esme))
        case .malformedFrame:
            _ = link.open()
            return link.receive(bytes: [0x01, 0x00, 0x03])
        case .frameTooLarge:
            _ = link.open()
            return link.receive(bytes: [0x00, 0x20])
        case .notAttached:
            _ = link.open()
            return link.receive(.data(data()))
        case .tooManyConnections:
            return link.open(admitted: false)
        case .notAuthorised:
            link.caller = mapCaller
            _ = link.open()
            return link.receive(hello(ppmid))
        }
    }

    @Test("codes 1-4, 6 and 7 close the link; 5 leaves it open", arguments: HANErrorCode.allCases)
    func closesExactlyAsTheContractSays(code: HANErrorCode) {
        let actions = Self.provoke(code)
        #expect(errorCodes(actions) == [code])
        let expectedToClose = code != .notAttached
        #expect(actions.contains(.close) == expectedToClose)
        if expectedToClose { #expect(actions.last == .close) }
    }
}

@Suite("HAN link machine: timeout, removal, close")
struct HANLinkLifecycleTests {
    @Test("the hello timeout closes a link without WELCOME, without an ERROR")
    func helloTimeout() {
        var link = Link()
        _ = link.open()
        #expect(link.machine.helloTimeoutFired() == [.close])
        #expect(link.machine.state == .closed)
        #expect(link.receive(hello(ppmid)).isEmpty)
        // The timer has fired: nothing to cancel, but the place is given back.
        #expect(link.machine.linkClosed() == [.releaseAdmission])
    }

    @Test("the hello timeout also closes a link whose HELLO is still being checked")
    func helloTimeoutWhileChecking() {
        var machine = HANLinkMachine(configuration: .init())
        _ = machine.linkOpened(admitted: true)
        _ = machine.received(hello(ppmid).encoded())
        #expect(machine.helloTimeoutFired() == [.close])
        #expect(machine.identified(caller: rigCaller, device: ppmidFacts).isEmpty)
    }

    @Test("an attached link has no idle timeout")
    func noTimeoutOnceAttached() {
        var link = Link.attached()
        #expect(link.machine.helloTimeoutFired().isEmpty)
        #expect(link.machine.state == .attached(ppmid))
    }

    @Test("removing the attached device sends ERROR 2 and closes; another device's removal changes nothing")
    func deviceRemoved() {
        var link = Link.attached()
        #expect(link.machine.deviceRemoved(esme).isEmpty)
        let actions = link.machine.deviceRemoved(ppmid)
        #expect(isError(.unknownDevice, closing: true, actions))
        #expect(reason(actions) == "device \(ppmid) was removed")
        #expect(link.machine.linkClosed() == [.detach(device: ppmid), .releaseAdmission])
    }

    @Test("a removal before HELLO changes nothing")
    func deviceRemovedBeforeHello() {
        var link = Link()
        _ = link.open()
        #expect(link.machine.deviceRemoved(ppmid).isEmpty)
        #expect(link.machine.state == .awaitingHello)
    }

    @Test("closing gives back what the link holds, once", arguments: [false, true])
    func linkClosed(attached: Bool) {
        var link = attached ? Link.attached() : Link()
        if !attached { _ = link.open() }
        let expected: [Action] = attached ? [.detach(device: ppmid), .releaseAdmission] : [.cancelHelloTimer, .releaseAdmission]
        #expect(link.machine.linkClosed() == expected)
        #expect(link.machine.linkClosed().isEmpty)
        #expect(link.machine.state == .closed)
    }
}

@Suite("HAN link machine: answer order")
struct HANLinkReplyOrderTests {
    @Test("answers go out at once while nothing waits on the pool")
    func immediate() {
        var machine = HANLinkMachine(configuration: .init())
        #expect(machine.route(blocking: false) == .emitNow)
        #expect(machine.route(blocking: false) == .emitNow)
        #expect(machine.repliesInFlight == 0)
    }

    @Test("blocking work queues, and so does every answer behind it until it is done")
    func queueBehindBlocking() {
        var machine = HANLinkMachine(configuration: .init())
        #expect(machine.route(blocking: true) == .enqueue)
        #expect(machine.route(blocking: false) == .enqueue)
        #expect(machine.route(blocking: true) == .enqueue)
        #expect(machine.repliesInFlight == 3)
        machine.queuedReplyFinished()
        machine.queuedReplyFinished()
        #expect(machine.route(blocking: false) == .enqueue)
        machine.queuedReplyFinished()
        machine.queuedReplyFinished()
        #expect(machine.repliesInFlight == 0)
        #expect(machine.route(blocking: false) == .emitNow)
    }

    @Test("a finish with nothing in flight does not go below zero")
    func finishWithoutWork() {
        var machine = HANLinkMachine(configuration: .init())
        machine.queuedReplyFinished()
        #expect(machine.repliesInFlight == 0)
        #expect(machine.route(blocking: false) == .emitNow)
    }
}

private extension HANData {
    var encodedFrame: [UInt8] { HANFrame.data(self).encoded() }
}
