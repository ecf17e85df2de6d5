// smetsbench: the benchmarks behind docs/benchmarks.md. Not a test: it prints figures.
//
//   smetsbench han --socket RUN/han.sock --device EUI [--connections 32] [--seconds 5]
//   smetsbench latency --socket RUN/han.sock --device EUI [--count 20000]
//   smetsbench echo [--connections 32] [--seconds 5]     the same frames against a plain echo server
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
    guard readExactly(fd, length, into: &buffer) else { return nil }
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
func throughput(path: String, device: EUI64, connections: Int, seconds: Int, echo: Bool) -> Double {
    let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: connections)
    counts.initialize(repeating: 0)
    let deadline = monotonicNanos() + UInt64(seconds) * 1_000_000_000
    let group = DispatchGroup()
    nonisolated(unsafe) let shared = counts
    for index in 0..<connections {
        group.enter()
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

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    print("usage: smetsbench han|latency|echo [--socket PATH] [--device EUI] [--connections N] [--seconds S] [--count N]")
    exit(2)
}
let options = Options(arguments.dropFirst(2))
let device = EUI64(options.string("device", "00-DB-12-34-56-78-00-05")) ?? EUI64(0)
let connections = options.int("connections", 32)
let seconds = options.int("seconds", 5)
switch arguments[1] {
case "han":
    let path = options.string("socket", "devices/.run/han.sock")
    let daemon = throughput(path: path, device: device, connections: connections, seconds: seconds, echo: false)
    let echoPath = startEchoServer()
    let echo = throughput(path: echoPath, device: device, connections: connections, seconds: seconds, echo: true)
    let daemonLatency = latency(path: path, device: device, count: options.int("count", 20000), echo: false)
    let echoLatency = latency(path: echoPath, device: device, count: options.int("count", 20000), echo: true)
    unlink(echoPath)
    print(String(format: "read-attributes round trips, %d connections, %ds: daemon %.0f/s, echo %.0f/s, ratio %.2f", connections, seconds, daemon, echo, daemon / echo))
    print(String(format: "single connection latency (us): daemon p50 %.1f p99 %.1f max %.1f; echo p50 %.1f p99 %.1f; p99 ratio %.2f",
                 daemonLatency.p50, daemonLatency.p99, daemonLatency.max, echoLatency.p50, echoLatency.p99, daemonLatency.p99 / echoLatency.p99))
case "echo":
    let path = startEchoServer()
    print(String(format: "echo round trips: %.0f/s", throughput(path: path, device: device, connections: connections, seconds: seconds, echo: true)))
    unlink(path)
default:
    print("unknown benchmark \(arguments[1])")
    exit(2)
}
