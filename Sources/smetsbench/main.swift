// smetsbench: the benchmarks behind docs/benchmarks.md. Not a test: it prints figures.
//
//   smetsbench han --socket RUN/han.sock --device EUI [--connections 32] [--seconds 5]
//   smetsbench latency --socket RUN/han.sock --device EUI [--count 20000]
//   smetsbench echo [--connections 32] [--seconds 5]     the same frames against a plain echo server
//   smetsbench ota --socket RUN/han.sock --device EUI --image FILE [--upgrade-time 0]
//                                                        a rig as OTA server: Image Notify to Upgrade End
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SMETSCore
import SMETSWire

func monotonicNanos() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
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
    if result != 0 { perror("connect \(path)"); exit(1) }
    return fd
}

func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if written <= 0 { perror("write"); exit(1) }
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

/// Reads one HAN frame; returns its type byte.
func readFrame(_ fd: Int32, _ buffer: inout [UInt8]) -> UInt8? {
    guard readExactly(fd, 2, into: &buffer) else { return nil }
    let length = Int(buffer[0]) | Int(buffer[1]) << 8
    guard length > 0, readExactly(fd, length, into: &buffer) else { return nil }
    frameLength = length
    return buffer[0]
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

/// Opens a link and attaches it (HELLO -> WELCOME) unless `echo`.
func openLink(_ path: String, device: EUI64, echo: Bool) -> Int32 {
    let fd = connectUnix(path)
    if !echo {
        writeAll(fd, HANFrame.hello(HANHello(rigNode: rig, target: device)).encoded())
        var buffer: [UInt8] = []
        guard readFrame(fd, &buffer) == HANFrameType.welcome.rawValue else { print("no WELCOME"); exit(1) }
    }
    return fd
}

/// Round trips per second over `connections` links, each a closed loop (send, wait, repeat).
func throughput(path: String, devices: [EUI64], connections: Int, seconds: Int, echo: Bool) -> Double {
    let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: connections)
    counts.initialize(repeating: 0)
    let deadline = monotonicNanos() + UInt64(seconds) * 1_000_000_000
    let group = DispatchGroup()
    nonisolated(unsafe) let shared = counts
    for index in 0..<connections {
        group.enter()
        // Links spread over the devices: a device takes at most maxLinksPerDevice links.
        let device = devices[index % devices.count]
        Thread {
            let fd = openLink(path, device: device, echo: echo)
            var buffer: [UInt8] = []
            var count = 0
            var sequence: UInt8 = 0
            while monotonicNanos() < deadline {
                sequence &+= 1
                writeAll(fd, readRequest(device: device, sequence: sequence))
                guard readFrame(fd, &buffer) != nil else { break }
                count += 1
            }
            close(fd)
            shared[index] = count
            group.leave()
        }.start()
    }
    group.wait()
    let total = counts.reduce(0, +)
    counts.deallocate()
    return Double(total) / Double(seconds)
}

func latency(path: String, device: EUI64, count: Int, echo: Bool) -> (p50: Double, p99: Double, max: Double) {
    let fd = openLink(path, device: device, echo: echo)
    var buffer: [UInt8] = []
    var samples: [UInt64] = []
    samples.reserveCapacity(count)
    for index in 0..<(count + 1000) {
        let request = readRequest(device: device, sequence: UInt8(truncatingIfNeeded: index))
        let start = monotonicNanos()
        writeAll(fd, request)
        _ = readFrame(fd, &buffer)
        if index >= 1000 { samples.append(monotonicNanos() - start) }  // the first 1000 warm up
    }
    close(fd)
    samples.sort()
    func micros(_ q: Double) -> Double { Double(samples[min(samples.count - 1, Int(Double(samples.count) * q))]) / 1000 }
    return (micros(0.5), micros(0.99), Double(samples.last ?? 0) / 1000)
}

/// A plain echo server on a Unix stream socket: every frame comes straight back. The yardstick for
/// what the socket, the kernel and the client loop cost without the daemon.
func startEchoServer() -> String {
    let path = "/tmp/smetsbench-echo-\(getpid()).sock"
    unlink(path)
    let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
    listen(listener, 256)
    Thread {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            Thread {
                var buffer: [UInt8] = []
                while true {
                    guard readExactly(client, 2, into: &buffer) else { break }
                    let length = Int(buffer[0]) | Int(buffer[1]) << 8
                    let header = [buffer[0], buffer[1]]
                    guard readExactly(client, length, into: &buffer) else { break }
                    writeAll(client, header + buffer[0..<length])
                }
                close(client)
            }.start()
        }
    }.start()
    return path
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
    guard let welcomeType = readFrame(fd, &buffer), welcomeType == HANFrameType.welcome.rawValue,
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
            guard let type = readFrame(fd, &buffer) else { return nil }
            guard type == HANFrameType.data.rawValue else {
                if type == HANFrameType.error.rawValue { print("ERROR frame from the daemon: code \(buffer[1])"); return nil }
                continue
            }
            guard case let .data(data)? = try? HANFrame.decodeBody(type: type, body: buffer[1..<frameLength]) else { return nil }
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
        while let type = readFrame(fd, &buffer) {
            if type == HANFrameType.data.rawValue, case let .data(data)? = try? HANFrame.decodeBody(type: type, body: buffer[1..<frameLength]),
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

/// The length of the frame `readFrame` last read (type + body), from its prefix.
nonisolated(unsafe) var frameLength = 0

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    print("usage: smetsbench han|latency|echo|ota [--socket PATH] [--device EUI] [--connections N] [--seconds S] [--count N] [--image FILE] [--upgrade-time T]")
    exit(2)
}
let options = Options(arguments.dropFirst(2))
let devices = options.string("device", "00-DB-12-34-56-78-00-05").split(separator: ",").compactMap { EUI64(String($0)) }
let device = devices.first ?? EUI64(0)
let connections = options.int("connections", 32)
let seconds = options.int("seconds", 5)
switch arguments[1] {
case "han":
    let path = options.string("socket", "devices/.run/han.sock")
    let daemon = throughput(path: path, devices: devices, connections: connections, seconds: seconds, echo: false)
    let echoPath = startEchoServer()
    let echo = throughput(path: echoPath, devices: devices, connections: connections, seconds: seconds, echo: true)
    let daemonLatency = latency(path: path, device: device, count: options.int("count", 20000), echo: false)
    let echoLatency = latency(path: echoPath, device: device, count: options.int("count", 20000), echo: true)
    unlink(echoPath)
    print(String(format: "read-attributes round trips, %d connections, %ds: daemon %.0f/s, echo %.0f/s, ratio %.2f", connections, seconds, daemon, echo, daemon / echo))
    print(String(format: "single connection latency (us): daemon p50 %.1f p99 %.1f max %.1f; echo p50 %.1f p99 %.1f; p99 ratio %.2f",
                 daemonLatency.p50, daemonLatency.p99, daemonLatency.max, echoLatency.p50, echoLatency.p99, daemonLatency.p99 / echoLatency.p99))
case "echo":
    let path = startEchoServer()
    print(String(format: "echo round trips: %.0f/s", throughput(path: path, devices: devices, connections: connections, seconds: seconds, echo: true)))
    unlink(path)
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
