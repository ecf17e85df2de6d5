import Foundation

/// Every limit and knob of the daemon, with safe defaults. Read from `smetsd.json` in the devices
/// folder when present (any subset of keys), then overridden by command-line flags.
public struct Settings: Sendable, Codable, Hashable {
    /// Largest HAN frame length field accepted (type + body); the contract caps it at 4096.
    public var maxHANFrameBytes = 4096
    /// HAN connections across all sockets.
    public var maxHANConnections = 1024
    /// Links attached to one device at once.
    public var maxLinksPerDevice = 16
    /// A HAN link that has not said HELLO within this many seconds is closed.
    public var helloTimeoutSeconds = 10.0
    /// How many lab devices get a socket of their own under `devices/` (han.sock serves them all).
    public var maxPerDeviceSockets = 64
    /// Control API connections at once.
    public var maxControlConnections = 256
    /// Longest JSON-RPC line accepted on the control socket.
    public var maxControlLineBytes = 1 << 20
    /// Most premises one `lab.generate` may add.
    public var maxGeneratePremises = 100_000
    /// Days of consumption history a display keeps (older days roll off).
    public var historyDays = 400
    /// Largest firmware image accepted, in bytes.
    public var maxImageBytes = 16 << 20
    /// Days of history back-filled for the lab's displays when the state is first created.
    public var seedHistoryDays = 14
    /// How many devices keep a `han.trace` ring (200 frames each) at once; the oldest goes first.
    public var maxTracedDevices = 2048
    /// Permissions of the socket files, octal (0660: owner and group may connect).
    public var socketMode = "0660"
    /// The group that owns the socket files (and may connect), if any.
    public var socketGroup: String?

    public init() {}

    public var socketModeBits: UInt32 { UInt32(socketMode, radix: 8) ?? 0o660 }

    public init(from decoder: any Decoder) throws {
        let defaults = Settings()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxHANFrameBytes = try c.decodeIfPresent(Int.self, forKey: .maxHANFrameBytes) ?? defaults.maxHANFrameBytes
        maxHANConnections = try c.decodeIfPresent(Int.self, forKey: .maxHANConnections) ?? defaults.maxHANConnections
        maxLinksPerDevice = try c.decodeIfPresent(Int.self, forKey: .maxLinksPerDevice) ?? defaults.maxLinksPerDevice
        helloTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .helloTimeoutSeconds) ?? defaults.helloTimeoutSeconds
        maxPerDeviceSockets = try c.decodeIfPresent(Int.self, forKey: .maxPerDeviceSockets) ?? defaults.maxPerDeviceSockets
        maxControlConnections = try c.decodeIfPresent(Int.self, forKey: .maxControlConnections) ?? defaults.maxControlConnections
        maxControlLineBytes = try c.decodeIfPresent(Int.self, forKey: .maxControlLineBytes) ?? defaults.maxControlLineBytes
        maxGeneratePremises = try c.decodeIfPresent(Int.self, forKey: .maxGeneratePremises) ?? defaults.maxGeneratePremises
        historyDays = try c.decodeIfPresent(Int.self, forKey: .historyDays) ?? defaults.historyDays
        maxImageBytes = try c.decodeIfPresent(Int.self, forKey: .maxImageBytes) ?? defaults.maxImageBytes
        seedHistoryDays = try c.decodeIfPresent(Int.self, forKey: .seedHistoryDays) ?? defaults.seedHistoryDays
        maxTracedDevices = try c.decodeIfPresent(Int.self, forKey: .maxTracedDevices) ?? defaults.maxTracedDevices
        socketMode = try c.decodeIfPresent(String.self, forKey: .socketMode) ?? defaults.socketMode
        socketGroup = try c.decodeIfPresent(String.self, forKey: .socketGroup)
    }

    /// Problems with the values, each naming the key and the allowed range.
    public func problems() -> [String] {
        var found: [String] = []
        func check(_ name: String, _ value: Int, _ range: ClosedRange<Int>) {
            if !range.contains(value) { found.append("\(name): \(value) is outside \(range.lowerBound)...\(range.upperBound)") }
        }
        check("maxHANFrameBytes", maxHANFrameBytes, 64...4096)
        check("maxHANConnections", maxHANConnections, 1...100_000)
        check("maxLinksPerDevice", maxLinksPerDevice, 1...1024)
        check("maxPerDeviceSockets", maxPerDeviceSockets, 0...10_000)
        check("maxControlConnections", maxControlConnections, 1...10_000)
        check("maxControlLineBytes", maxControlLineBytes, 1024...(64 << 20))
        check("maxGeneratePremises", maxGeneratePremises, 1...1_000_000)
        check("historyDays", historyDays, 1...3650)
        check("maxImageBytes", maxImageBytes, 1024...(256 << 20))
        check("seedHistoryDays", seedHistoryDays, 0...400)
        check("maxTracedDevices", maxTracedDevices, 1...1_000_000)
        if UInt32(socketMode, radix: 8).map({ $0 > 0o777 }) ?? true { found.append("socketMode: '\(socketMode)' must be octal permissions such as 0660") }
        if !(0.1...3600).contains(helloTimeoutSeconds) { found.append("helloTimeoutSeconds: must be 0.1...3600") }
        return found
    }
}
