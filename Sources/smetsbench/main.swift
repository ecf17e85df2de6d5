// smetsbench: the benchmarks behind docs/benchmarks.md. Not a test: it prints figures.
//
//   smetsbench han --socket RUN/han.sock --device EUI,EUI,... --echo-socket PATH
//                  [--connections 32] [--seconds 5] [--runs 3] [--count 20000] [--daemon-pid P] [--echo-pid P]
//       closed-loop Basic Read Attributes (SWBuildID) round trips over --connections links, each to
//       its own device, against the daemon and against an echo server (scripts/bench-han starts
//       bench/c/han-echo.c), alternately --runs times; then --count sequential round trips on one link
//       to each for latency (0: none). With the servers' PIDs it also prints the CPU each side
//       (server, this client) spent per round trip, from /proc.
//   smetsbench probe --socket RUN/han.sock --device EUI
//       one link in a closed loop recording every round trip; phases are marked on stdin, one
//       command a line: "begin" starts a phase (answered "begun"), "end LABEL" prints its figures
//       as one JSON line, "quit" (or end of input) stops. Prints "ready" once attached. A phase
//       holds the round trips in flight at its begin or started before its end (the one in flight
//       at the end is waited for). Used by scripts/bench-latency.
//   smetsbench ota --socket RUN/han.sock --device EUI --image FILE [--upgrade-time 0]
//       a rig as OTA server: Image Notify to Upgrade End
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SMETSCore
import SMETSWire
import Synchronization

func monotonicNanos() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("smetsbench: \(message)\n".utf8))
    exit(1)
}

func connectUnix(_ path: String) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (index, byte) in path.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
    }
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    if result != 0 { fail("connect \(path): \(String(cString: strerror(errno)))") }
    return fd
}

func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if written <= 0 { fail("write: \(String(cString: strerror(errno)))") }
        offset += written
    }
}

func readExactly(_ fd: Int32, _ count: Int, into buffer: inout [UInt8]) -> Bool {
    if buffer.count < count { buffer = [UInt8](repeating: 0, count: count) }
    var offset = 0
    while offset < count {
        let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + offset, count - offset) }
        if got <= 0 { return false }
        offset += got
    }
    return true
}

/// Reads one HAN frame into `buffer` (its type byte first); returns the type and the frame's length
/// (type and body, as its prefix says).
func readFrame(_ fd: Int32, _ buffer: inout [UInt8]) -> (type: UInt8, length: Int)? {
    guard readExactly(fd, 2, into: &buffer) else { return nil }
    let length = Int(buffer[0]) | Int(buffer[1]) << 8
    guard length > 0, readExactly(fd, length, into: &buffer) else { return nil }
    return (buffer[0], length)
}

struct Options {
    var values: [String: String] = [:]
    init(_ arguments: ArraySlice<String>) {
        var iterator = arguments.makeIterator()
        while let key = iterator.next() { if key.hasPrefix("--") { values[String(key.dropFirst(2))] = iterator.next() ?? "" } }
    }
    func string(_ key: String, _ fallback: String) -> String { values[key] ?? fallback }
    func int(_ key: String, _ fallback: Int) -> Int { values[key].flatMap { Int($0) } ?? fallback }
}

let rig = EUI64(0x00DB_FFFF_0000_0001)

func readRequest(device: EUI64, sequence: UInt8) -> [UInt8] {
    let zcl = ZCLFrame(ReadAttributes(attributeIDs: [BasicAttribute.swBuildID]), direction: .clientToServer, sequenceNumber: sequence)
    return HANFrame.data(HANData(source: rig, destination: device, profileID: ZCLProfileID.smartEnergy, clusterID: ZCLClusterID.basic,
                                 sourceEndpoint: 1, destinationEndpoint: 1, zcl: zcl.encoded())).encoded()
}

/// Who answers a link: the daemon with a Read Attributes Response after HELLO and WELCOME, or an
/// echo server with the request's own bytes.
enum Peer: Sendable, CustomStringConvertible {
    case daemon, echo

    /// The ZCL command ID of the answer to a Read Attributes request.
    var answerCommand: UInt8 { self == .daemon ? ZCLGlobalCommandID.readAttributesResponse : ZCLGlobalCommandID.readAttributes }
    var description: String { self == .daemon ? "daemon" : "echo" }
}

/// One closed-loop link: a Basic Read Attributes of SWBuildID, wait for its answer, repeat. The same
/// code runs against the daemon and the echo; only the HELLO and the answer's command differ.
struct Link {
    let fd: Int32
    let peer: Peer
    /// The request for each sequence number, encoded once: the loop measures the link, not the encoder.
    let requests: [[UInt8]]
    var sequence: UInt8 = 0
    var buffer: [UInt8] = []
    /// Frames that were not the answer (a device's own traffic reaches every link attached to it).
    var skipped = 0

    /// Connects, attaches (HELLO, WELCOME) when `peer` is the daemon, and checks a first answer.
    init(path: String, device: EUI64, peer: Peer) {
        self.peer = peer
        fd = connectUnix(path)
        requests = (0...255).map { readRequest(device: device, sequence: UInt8($0)) }
        if peer == .daemon {
            writeAll(fd, HANFrame.hello(HANHello(rigNode: rig, target: device)).encoded())
            guard let (type, length) = readFrame(fd, &buffer) else { fail("\(device): the daemon closed the link after HELLO") }
            guard type == HANFrameType.welcome.rawValue else {
                fail("\(device): no WELCOME (frame type \(type)\(type == HANFrameType.error.rawValue && length > 1 ? ", error code \(buffer[1])" : ""))")
            }
        }
        guard roundTrip() else { fail("\(device): no answer from the \(peer) to the first Read Attributes") }
        guard peer == .daemon else { return }
        guard case let .data(data)? = try? HANFrame.decodeBody(type: buffer[0], body: buffer[1..<answerLength]),
              let zcl = try? ZCLFrame(decoding: data.zcl), let response = try? zcl.decodePayload(as: ReadAttributesResponse.self),
              let record = response.records.first, record.attributeID == BasicAttribute.swBuildID, record.value != nil else {
            fail("\(device): the first answer is not a Read Attributes Response with SWBuildID")
        }
    }

    /// The length (type and body) of the last answer.
    private(set) var answerLength = 0

    /// One round trip; false when the link closed, sent ERROR, or echoed a different byte count.
    mutating func roundTrip() -> Bool {
        sequence &+= 1
        let request = requests[Int(sequence)]
        writeAll(fd, request)
        while let (type, length) = readFrame(fd, &buffer) {
            // After the type byte and the 22-byte DATA header: ZCL frame control, sequence, command.
            if type == HANFrameType.data.rawValue, length >= 26, buffer[24] == sequence, buffer[25] == peer.answerCommand {
                answerLength = length
                return peer == .daemon || length == request.count - 2
            }
            if type == HANFrameType.error.rawValue { return false }
            skipped += 1
        }
        return false
    }
}

/// User and system CPU seconds a process has used so far, from /proc/PID/stat (nil when unreadable).
func cpuSeconds(pid: Int32) -> (user: Double, system: Double)? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let nameEnd = text.lastIndex(of: ")") else { return nil }
    // After the command name: state is field 3, utime field 14, stime field 15 (proc(5)).
    let fields = text[text.index(after: nameEnd)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    return (user / ticks, system / ticks)
}

/// One timed run: round trips per second, and the CPU each side spent per round trip.
struct Throughput {
    var rate: Double
    var roundTrips: Int
    /// Microseconds of user and system CPU per round trip, of the server (when its PID is known) and of this client.
    var server: (user: Double, system: Double)?
    var client: (user: Double, system: Double)?

    var cpuDescription: String {
        func text(_ cpu: (user: Double, system: Double)?) -> String {
            cpu.map { String(format: "%.1f user + %.1f sys", $0.user, $0.system) } ?? "?"
        }
        return "CPU us per round trip: server \(text(server)), client \(text(client))"
    }
}

/// Round trips per second over one link per device, each a closed loop. Every link attaches and
/// answers once before the clock starts; the clock stops when the links are told to stop.
func throughput(path: String, devices: [EUI64], seconds: Int, peer: Peer, serverPID: Int32?) -> Throughput {
    final class Run: Sendable {
        let stop = Atomic<Bool>(false)
        let failed = Atomic<Bool>(false)
        let total = Atomic<Int>(0)
        let ready = DispatchSemaphore(value: 0)
        let go = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
    }
    let run = Run()
    for device in devices {
        run.done.enter()
        Thread {
            var link = Link(path: path, device: device, peer: peer)
            run.ready.signal()
            run.go.wait()
            var count = 0
            while !run.stop.load(ordering: .relaxed) {
                guard link.roundTrip() else { run.failed.store(true, ordering: .relaxed); break }
                count += 1
            }
            close(link.fd)
            run.total.add(count, ordering: .relaxed)
            run.done.leave()
        }.start()
    }
    for _ in devices { run.ready.wait() }
    let serverBefore = serverPID.flatMap { cpuSeconds(pid: $0) }, clientBefore = cpuSeconds(pid: getpid())
    let start = monotonicNanos()
    for _ in devices { run.go.signal() }
    usleep(UInt32(seconds) * 1_000_000)
    run.stop.store(true, ordering: .relaxed)
    let elapsed = Double(monotonicNanos() - start) / 1e9
    let serverAfter = serverPID.flatMap { cpuSeconds(pid: $0) }, clientAfter = cpuSeconds(pid: getpid())
    run.done.wait()
    if run.failed.load(ordering: .relaxed) { fail("a link to the \(peer) failed during the run") }
    let total = run.total.load(ordering: .relaxed)
    func perRoundTrip(_ before: (user: Double, system: Double)?, _ after: (user: Double, system: Double)?) -> (user: Double, system: Double)? {
        guard let before, let after, total > 0 else { return nil }
        return ((after.user - before.user) * 1e6 / Double(total), (after.system - before.system) * 1e6 / Double(total))
    }
    return Throughput(rate: Double(total) / elapsed, roundTrips: total, server: perRoundTrip(serverBefore, serverAfter),
                      client: perRoundTrip(clientBefore, clientAfter))
}

/// Latency figures of sorted samples, in microseconds.
struct Percentiles {
    var count: Int, p50: Double, p99: Double, p999: Double, max: Double

    init(sorted samples: [UInt64]) {
        func micros(_ q: Double) -> Double {
            guard !samples.isEmpty else { return 0 }
            let rank = Int((Double(samples.count) * q).rounded(.up)) - 1
            return Double(samples[Swift.max(0, Swift.min(samples.count - 1, rank))]) / 1000
        }
        count = samples.count
        p50 = micros(0.5); p99 = micros(0.99); p999 = micros(0.999)
        max = Double(samples.last ?? 0) / 1000
    }
}

/// `count` sequential round trips on one link after 1,000 to warm up.
func latency(path: String, device: EUI64, count: Int, peer: Peer) -> Percentiles {
    var link = Link(path: path, device: device, peer: peer)
    var samples: [UInt64] = []
    samples.reserveCapacity(count)
    for index in 0..<(count + 1000) {
        let start = monotonicNanos()
        guard link.roundTrip() else { fail("the link to the \(peer) failed") }
        if index >= 1000 { samples.append(monotonicNanos() - start) }
    }
    close(link.fd)
    samples.sort()
    return Percentiles(sorted: samples)
}

func han(options: Options, devices: [EUI64]) {
    let path = options.string("socket", "devices/.run/han.sock")
    guard let echoPath = options.values["echo-socket"] else { fail("han needs --echo-socket PATH (scripts/bench-han starts bench/c/han-echo.c)") }
    let connections = options.int("connections", 32), seconds = options.int("seconds", 5), runs = options.int("runs", 3)
    guard connections > 0, seconds > 0, runs > 0 else { fail("--connections, --seconds and --runs must be positive") }
    var seen = Set<EUI64>()
    let distinct = Array(devices.filter { seen.insert($0).inserted }.prefix(connections))
    guard distinct.count == connections else { fail("\(connections) connections need \(connections) distinct devices, --device names \(distinct.count)") }
    let daemonPID = options.values["daemon-pid"].flatMap { Int32($0) }, echoPID = options.values["echo-pid"].flatMap { Int32($0) }
    var daemonRates: [Double] = [], echoRates: [Double] = []
    for run in 1...runs {
        // Alternating, so that a change in the machine's load touches both sides alike.
        let daemon = throughput(path: path, devices: distinct, seconds: seconds, peer: .daemon, serverPID: daemonPID)
        let echo = throughput(path: echoPath, devices: distinct, seconds: seconds, peer: .echo, serverPID: echoPID)
        daemonRates.append(daemon.rate); echoRates.append(echo.rate)
        print(String(format: "run %d: %d connections, %d s each: daemon %.0f/s, echo %.0f/s, ratio %.2f", run, connections, seconds,
                     daemon.rate, echo.rate, daemon.rate / echo.rate))
        print("  daemon \(daemon.cpuDescription)")
        print("  echo   \(echo.cpuDescription)")
        fflush(nil)  // every stream: naming stdout is not concurrency-safe in Swift 6
    }
    let daemon = daemonRates.sorted()[runs / 2], echo = echoRates.sorted()[runs / 2]
    print(String(format: "read-attributes round trips, %d connections to %d devices, median of %d runs of %d s: daemon %.0f/s, echo %.0f/s, ratio %.2f",
                 connections, distinct.count, runs, seconds, daemon, echo, daemon / echo))
    let count = options.int("count", 20000)
    if count > 0 {
        let d = latency(path: path, device: distinct[0], count: count, peer: .daemon)
        let e = latency(path: echoPath, device: distinct[0], count: count, peer: .echo)
        print(String(format: "single connection latency over %d round trips (us): daemon p50 %.1f p99 %.1f p999 %.1f max %.1f; echo p50 %.1f p99 %.1f p999 %.1f max %.1f; p99 ratio %.2f",
                     count, d.p50, d.p99, d.p999, d.max, e.p50, e.p99, e.p999, e.max, d.p99 / e.p99))
    }
}

// MARK: probe: latency while something else runs

/// Round trips recorded by the probe's loop, keyed by when each started.
final class ProbeLog: Sendable {
    struct Sample { var start: UInt64, nanos: UInt64 }
    private let samples = Mutex<[Sample]>([])
    /// The start of the latest completed round trip.
    let lastCompletedStart = Atomic<UInt64>(0)
    let stop = Atomic<Bool>(false)
    let failed = Atomic<Bool>(false)

    func record(start: UInt64, end: UInt64) {
        samples.withLock { $0.append(Sample(start: start, nanos: end - start)) }
        lastCompletedStart.store(start, ordering: .releasing)
    }

    /// Removes and returns the samples that started before `time`.
    func take(before time: UInt64) -> [Sample] {
        samples.withLock { samples in
            let taken = samples.filter { $0.start < time }
            samples.removeAll { $0.start < time }
            return taken
        }
    }

    /// Drops the samples that ended before `time`.
    func drop(endedBefore time: UInt64) {
        samples.withLock { $0.removeAll { $0.start + $0.nanos < time } }
    }
}

func probe(options: Options, device: EUI64) {
    let path = options.string("socket", "devices/.run/han.sock")
    let log = ProbeLog()
    let ready = DispatchSemaphore(value: 0)
    let finished = DispatchSemaphore(value: 0)
    Thread {
        var link = Link(path: path, device: device, peer: .daemon)
        ready.signal()
        while !log.stop.load(ordering: .relaxed) {
            let start = monotonicNanos()
            guard link.roundTrip() else { log.failed.store(true, ordering: .relaxed); break }
            log.record(start: start, end: monotonicNanos())
        }
        close(link.fd)
        finished.signal()
    }.start()
    ready.wait()
    print("ready")
    fflush(nil)
    var phaseStart = monotonicNanos()
    while let line = readLine() {
        let words = line.split(separator: " ", maxSplits: 1).map(String.init)
        switch words.first {
        case "begin":
            // A round trip in flight now belongs to the phase: what it waits for may be the phase's write.
            phaseStart = monotonicNanos()
            log.drop(endedBefore: phaseStart)
            print("begun")
            fflush(nil)
        case "end":
            let end = monotonicNanos()
            // The round trip in flight at the end belongs to the phase (it may be the stalled one):
            // wait for it, for as long as two minutes.
            while log.lastCompletedStart.load(ordering: .acquiring) < end, !log.failed.load(ordering: .relaxed),
                  monotonicNanos() - end < 120_000_000_000 {
                usleep(200)
            }
            if log.failed.load(ordering: .relaxed) || log.lastCompletedStart.load(ordering: .acquiring) < end {
                fail("the probe's link failed or stalled for over 120 s")
            }
            let samples = log.take(before: end)
            let figures = Percentiles(sorted: samples.map(\.nanos).sorted())
            let seconds = Double(end - phaseStart) / 1e9
            let label = words.count > 1 ? words[1] : "phase"
            let json: [String: Any] = ["phase": label, "seconds": seconds, "rounds": figures.count, "p50_us": figures.p50, "p99_us": figures.p99,
                                       "p999_us": figures.p999, "max_us": figures.max]
            guard let data = try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]) else { fail("cannot encode figures") }
            print(String(decoding: data, as: UTF8.self))
            fflush(nil)
        case "quit":
            log.stop.store(true, ordering: .relaxed)
        default:
            fail("unknown probe command '\(line)'")
        }
        if log.stop.load(ordering: .relaxed) { break }
    }
    log.stop.store(true, ordering: .relaxed)
    finished.wait()
    if log.failed.load(ordering: .relaxed) { fail("the probe's link failed") }
}

// MARK: ota: a rig as OTA server over the HAN link

/// The rig side of the OTA handshake (docs/firmware.md, "A rig as OTA server"): HELLO to the device,
/// Image Notify, then answers Query Next Image Request and every Image Block Request from `file`
/// with exactly the bytes asked for, and Upgrade End Request with Upgrade End Response. Times Image
/// Notify to Upgrade End Request (the transfer and the device's checks and durable store), and
/// waits for the device's Default Response to Upgrade End Response (after its activation).
func ota(path: String, device: EUI64, file: [UInt8], upgradeTime: UInt32) -> Int32 {
    let image: OTAImage
    do { image = try OTAImage(parsing: file) } catch { print("the image cannot be read: \(error)"); return 1 }
    let header = image.header
    let fd = connectUnix(path)
    writeAll(fd, HANFrame.hello(HANHello(rigNode: rig, target: device)).encoded())
    var buffer: [UInt8] = []
    guard let welcomeType = readFrame(fd, &buffer)?.type, welcomeType == HANFrameType.welcome.rawValue,
          case let .welcome(welcome)? = try? HANFrame.decodeBody(type: welcomeType, body: buffer[1..<(1 + HANWelcome.bodyLength)]) else {
        print("no WELCOME from \(device)")
        return 1
    }
    func send(_ frame: ZCLFrame) {
        writeAll(fd, HANFrame.data(HANData(source: rig, destination: device, clusterID: ZCLClusterID.otaUpgrade, zcl: frame.encoded())).encoded())
    }
    /// The next ZCL frame the device sends on the OTA cluster (other frames are skipped).
    func nextOTA() -> ZCLFrame? {
        while true {
            guard let (type, length) = readFrame(fd, &buffer) else { return nil }
            guard type == HANFrameType.data.rawValue else {
                if type == HANFrameType.error.rawValue { print("ERROR frame from the daemon: code \(buffer[1])"); return nil }
                continue
            }
            guard case let .data(data)? = try? HANFrame.decodeBody(type: type, body: buffer[1..<length]) else { return nil }
            guard data.clusterID == ZCLClusterID.otaUpgrade, let zcl = try? ZCLFrame(decoding: data.zcl) else { continue }
            return zcl
        }
    }
    var sequence: UInt8 = 0x40
    let start = monotonicNanos()
    send(ZCLFrame(ImageNotify(queryJitter: 100, manufacturerCode: header.manufacturerCode, imageType: header.imageType,
                              newFileVersion: header.fileVersion), sequenceNumber: sequence, disableDefaultResponse: true))
    var blocks = 0, largest = 0, smallest = Int.max, served = 0
    var end: UpgradeEndRequest?
    var endAt: UInt64 = 0
    loop: while let frame = nextOTA() {
        guard frame.header.frameType == .clusterSpecific, frame.header.direction == .clientToServer else { continue }
        switch frame.header.commandID {
        case OTACommandID.queryNextImageRequest:
            let response = QueryNextImageResponse.success(manufacturerCode: header.manufacturerCode, imageType: header.imageType,
                                                          fileVersion: header.fileVersion, imageSize: UInt32(file.count))
            send(ZCLFrame(response, sequenceNumber: frame.header.sequenceNumber, disableDefaultResponse: true))
        case OTACommandID.imageBlockRequest:
            guard let request = try? frame.decodePayload(as: ImageBlockRequest.self) else { print("bad Image Block Request"); return 1 }
            let from = Int(request.fileOffset)
            let to = min(file.count, from + Int(request.maximumDataSize))
            guard from < to else { print("Image Block Request past the end: \(from)"); return 1 }
            blocks += 1
            served += to - from
            largest = max(largest, Int(request.maximumDataSize))
            smallest = min(smallest, Int(request.maximumDataSize))
            let response = ImageBlockResponse.success(manufacturerCode: header.manufacturerCode, imageType: header.imageType,
                                                      fileVersion: header.fileVersion, fileOffset: request.fileOffset, data: Array(file[from..<to]))
            send(ZCLFrame(response, sequenceNumber: frame.header.sequenceNumber, disableDefaultResponse: true))
        case OTACommandID.upgradeEndRequest:
            endAt = monotonicNanos()
            guard let request = try? frame.decodePayload(as: UpgradeEndRequest.self) else { print("bad Upgrade End Request"); return 1 }
            end = request
            break loop
        default:
            continue
        }
    }
    guard let end else { print("the link closed before Upgrade End Request"); return 1 }
    var activated = UInt64(0)
    if end.statusCode == ZCLStatus.success.rawValue {
        sequence &+= 1
        send(ZCLFrame(UpgradeEndResponse(manufacturerCode: header.manufacturerCode, imageType: header.imageType, fileVersion: header.fileVersion,
                                         currentTime: 0, upgradeTime: upgradeTime), sequenceNumber: sequence, disableDefaultResponse: false))
        // The device answers Upgrade End Response with a Default Response once it has acted on it.
        while let (type, length) = readFrame(fd, &buffer) {
            if type == HANFrameType.data.rawValue, case let .data(data)? = try? HANFrame.decodeBody(type: type, body: buffer[1..<length]),
               let zcl = try? ZCLFrame(decoding: data.zcl), zcl.header.frameType == .global,
               zcl.header.commandID == ZCLGlobalCommandID.defaultResponse, zcl.header.sequenceNumber == sequence {
                activated = monotonicNanos()
                break
            }
        }
    }
    close(fd)
    let seconds = Double(endAt - start) / 1e9
    print(String(format: "ota: %d-byte image (%@ %@ -> %@) to %@ over han.sock: Image Notify to Upgrade End Request %.3f s, %d blocks of up to %d bytes (smallest asked %d), %.0f KiB/s, %.1f us per block; Upgrade End status %@",
                 file.count, upperHex(header.manufacturerCode, width: 4), upperHex(welcome.currentFileVersion, width: 8),
                 upperHex(header.fileVersion, width: 8), device.description, seconds, blocks, largest, smallest,
                 Double(served) / 1024 / seconds, seconds * 1e6 / Double(max(1, blocks)), ZCLStatus.describe(end.statusCode)))
    if activated > 0 {
        print(String(format: "ota: Upgrade End Response (upgrade time %u) to its Default Response: %.3f s", upgradeTime, Double(activated - endAt) / 1e9))
    }
    return end.statusCode == ZCLStatus.success.rawValue ? 0 : 1
}


let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    print("usage: smetsbench han|probe|ota [--socket PATH] [--device EUI[,EUI...]] [--echo-socket PATH] [--connections N] [--seconds S] [--runs N] [--count N] [--image FILE] [--upgrade-time T]")
    exit(2)
}
let options = Options(arguments.dropFirst(2))
let devices = options.string("device", "00-DB-12-34-56-78-00-05").split(separator: ",").compactMap { EUI64(String($0)) }
let device = devices.first ?? EUI64(0)
switch arguments[1] {
case "han":
    han(options: options, devices: devices)
case "probe":
    probe(options: options, device: device)
case "ota":
    let path = options.string("socket", "devices/.run/han.sock")
    guard let imagePath = options.values["image"], let data = FileManager.default.contents(atPath: imagePath) else {
        print("ota needs --image FILE (an OTA file, e.g. from smetsctl firmware build)")
        exit(2)
    }
    exit(ota(path: path, device: device, file: Array(data), upgradeTime: UInt32(options.int("upgrade-time", 0))))
default:
    print("unknown benchmark \(arguments[1])")
    exit(2)
}
