import Foundation
import Synchronization

/// Every limit and knob of the daemon, with safe defaults. Read from `smetsd.json` in the devices
/// folder when present (any subset of keys; an unknown key is an error).
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
    /// Event bytes a control client may leave unread before further events are dropped for it (and
    /// counted in an `events.lost` notification): what a stalled subscriber can cost in memory.
    public var maxEventBacklogBytes = 1 << 20
    /// Most premises one `lab.generate` may add.
    public var maxGeneratePremises = 100_000
    /// Days of consumption history a display keeps (older days roll off).
    public var historyDays = 400
    /// Largest firmware image accepted, in bytes.
    public var maxImageBytes = 16 << 20
    /// Days of history back-filled for a lab display when it is first added to the state.
    public var seedHistoryDays = 14
    /// How many devices keep a `han.trace` ring (200 frames each) at once; the oldest goes first.
    public var maxTracedDevices = 2048
    /// Permissions of the socket files, octal (0660: owner and group may connect).
    public var socketMode = "0660"
    /// The group that owns the socket files (and may connect), if any.
    public var socketGroup: String?
    /// The only folder a request's `path` may name an image in (relative: to the devices folder).
    /// Unset: the daemon opens no file a request names.
    public var imagesDirectory: String?
    /// Bytes all `firmware.upload` images in progress or held may take at once.
    public var maxUploadBytes = 64 << 20
    /// While the state folder refuses writes, a one-row write tries it this often (seconds).
    public var storageProbeSeconds = 2.0
    /// HAN fault rules (`faults.add`) set at once.
    public var maxFaultRules = 64
    /// Nice value of the threads that run long writes (`lab.generate`, `tenancy.change`,
    /// `firmware.update`'s transfers), 0 to 19: above 0 the HAN and control loops go first, and so
    /// does every other busy process on the machine (at 10 a long write gets a tenth of a core
    /// against one CPU-bound neighbour).
    public var bulkThreadNice = 5
    /// The DUIS front (docs/duis.md): listener, limits, DCC identity, Receive Response URLs.
    public var duis = DUISSettings()

    /// The keys of `smetsd.json`, in the order of docs/settings.md.
    public enum CodingKeys: String, CodingKey, CaseIterable, Sendable {
        case maxHANFrameBytes, maxHANConnections, maxLinksPerDevice, helloTimeoutSeconds, maxPerDeviceSockets
        case maxControlConnections, maxControlLineBytes, maxEventBacklogBytes, maxGeneratePremises, historyDays, maxImageBytes
        case seedHistoryDays, maxTracedDevices, socketMode, socketGroup
        case imagesDirectory, maxUploadBytes, storageProbeSeconds
        case maxFaultRules, bulkThreadNice
        case duis
    }

    public init() {}

    public var socketModeBits: UInt32 { UInt32(socketMode, radix: 8) ?? 0o660 }

    public init(from decoder: any Decoder) throws {
        // Unknown keys first: a misspelt limit would otherwise be silently ignored.
        let unknown = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
            .filter { CodingKeys(stringValue: $0) == nil }.sorted()
        if let first = unknown.first {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + [AnyKey(first)],
                                                    debugDescription: Self.unknownKeyAdvice(unknown)))
        }
        let defaults = Settings()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxHANFrameBytes = try c.decodeIfPresent(Int.self, forKey: .maxHANFrameBytes) ?? defaults.maxHANFrameBytes
        maxHANConnections = try c.decodeIfPresent(Int.self, forKey: .maxHANConnections) ?? defaults.maxHANConnections
        maxLinksPerDevice = try c.decodeIfPresent(Int.self, forKey: .maxLinksPerDevice) ?? defaults.maxLinksPerDevice
        helloTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .helloTimeoutSeconds) ?? defaults.helloTimeoutSeconds
        maxPerDeviceSockets = try c.decodeIfPresent(Int.self, forKey: .maxPerDeviceSockets) ?? defaults.maxPerDeviceSockets
        maxControlConnections = try c.decodeIfPresent(Int.self, forKey: .maxControlConnections) ?? defaults.maxControlConnections
        maxControlLineBytes = try c.decodeIfPresent(Int.self, forKey: .maxControlLineBytes) ?? defaults.maxControlLineBytes
        maxEventBacklogBytes = try c.decodeIfPresent(Int.self, forKey: .maxEventBacklogBytes) ?? defaults.maxEventBacklogBytes
        maxGeneratePremises = try c.decodeIfPresent(Int.self, forKey: .maxGeneratePremises) ?? defaults.maxGeneratePremises
        historyDays = try c.decodeIfPresent(Int.self, forKey: .historyDays) ?? defaults.historyDays
        maxImageBytes = try c.decodeIfPresent(Int.self, forKey: .maxImageBytes) ?? defaults.maxImageBytes
        seedHistoryDays = try c.decodeIfPresent(Int.self, forKey: .seedHistoryDays) ?? defaults.seedHistoryDays
        maxTracedDevices = try c.decodeIfPresent(Int.self, forKey: .maxTracedDevices) ?? defaults.maxTracedDevices
        socketMode = try c.decodeIfPresent(String.self, forKey: .socketMode) ?? defaults.socketMode
        socketGroup = try c.decodeIfPresent(String.self, forKey: .socketGroup)
        imagesDirectory = try c.decodeIfPresent(String.self, forKey: .imagesDirectory)
        maxUploadBytes = try c.decodeIfPresent(Int.self, forKey: .maxUploadBytes) ?? defaults.maxUploadBytes
        storageProbeSeconds = try c.decodeIfPresent(Double.self, forKey: .storageProbeSeconds) ?? defaults.storageProbeSeconds
        maxFaultRules = try c.decodeIfPresent(Int.self, forKey: .maxFaultRules) ?? defaults.maxFaultRules
        bulkThreadNice = try c.decodeIfPresent(Int.self, forKey: .bulkThreadNice) ?? defaults.bulkThreadNice
        duis = try c.decodeIfPresent(DUISSettings.self, forKey: .duis) ?? defaults.duis
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
        check("maxEventBacklogBytes", maxEventBacklogBytes, (16 << 10)...(1 << 30))
        check("maxGeneratePremises", maxGeneratePremises, 1...1_000_000)
        check("historyDays", historyDays, 1...3650)
        check("maxImageBytes", maxImageBytes, 1024...(256 << 20))
        check("seedHistoryDays", seedHistoryDays, 0...400)
        check("maxTracedDevices", maxTracedDevices, 1...1_000_000)
        check("maxUploadBytes", maxUploadBytes, 1024...(1 << 30))
        if !(0.1...3600).contains(storageProbeSeconds) { found.append("storageProbeSeconds: must be 0.1...3600") }
        if imagesDirectory?.isEmpty == true { found.append("imagesDirectory: must be a folder, or left out") }
        check("maxFaultRules", maxFaultRules, 1...10_000)
        check("bulkThreadNice", bulkThreadNice, 0...19)
        if UInt32(socketMode, radix: 8).map({ $0 > 0o777 }) ?? true { found.append("socketMode: '\(socketMode)' must be octal permissions such as 0660") }
        if !(0.1...3600).contains(helloTimeoutSeconds) { found.append("helloTimeoutSeconds: must be 0.1...3600") }
        found += duis.problems()
        return found
    }
}

// MARK: - Unknown keys

extension Settings {
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Every key `smetsd.json` may hold.
    public static var knownKeys: [String] { CodingKeys.allCases.map(\.rawValue) }

    /// The known keys in lower case, in `knownKeys` order: a typo in letter case costs nothing.
    private static let lowercasedKnownKeys: [[UInt8]] = knownKeys.map { Array($0.lowercased().utf8) }

    /// The known key `name` was most likely meant to be (a typo, other letter case, or a
    /// shortened or lengthened name), or nil when none is close.
    public static func closestKey(to name: String) -> String? {
        let typed = Array(name.lowercased().utf8)
        let limit = max(2, typed.count / 4)
        var best: (key: String, distance: Int)?
        for (key, known) in zip(knownKeys, lowercasedKnownKeys) {
            let distance: Int?
            if typed.count >= 5 && (known.starts(with: typed) || typed.starts(with: known)) {
                distance = abs(known.count - typed.count)  // one is the other's prefix: the rest are insertions
            } else {
                distance = editDistance(typed, known, atMost: limit)
            }
            if let distance, distance < best?.distance ?? .max { best = (key, distance) }
        }
        return best?.key
    }

    /// How many unknown keys get advice of their own; the rest are counted. A file of thousands of
    /// stray keys gets a readable error, and a bounded amount of work, not one line per key.
    static let unknownKeysAdvised = 8

    /// What to write instead of the unknown keys: the nearest known key for each, else the list.
    static func unknownKeyAdvice(_ unknown: [String]) -> String {
        func advice(_ key: String) -> String {
            closestKey(to: key).map { "did you mean '\($0)'?" } ?? "it is none of \(knownKeys.joined(separator: ", ")) (see docs/settings.md)"
        }
        var text = "unknown key; " + advice(unknown[0])
        for other in unknown.dropFirst().prefix(unknownKeysAdvised - 1) { text += "; also unknown: '\(other)', " + advice(other) }
        if unknown.count > unknownKeysAdvised { text += "; and \(unknown.count - unknownKeysAdvised) more unknown keys" }
        return text
    }

    /// Levenshtein distance (insertions, deletions and substitutions) when it is at most `limit`,
    /// else nil. The bound keeps a long stray key from costing its full length times each known
    /// key's: lengths further apart than `limit` are out at once, and a row whose every cell is past
    /// `limit` ends the walk, since later rows never go below the row before.
    static func editDistance(_ a: [UInt8], _ b: [UInt8], atMost limit: Int) -> Int? {
        guard abs(a.count - b.count) <= limit else { return nil }
        guard !a.isEmpty else { return b.count }
        var previous = Array(0...b.count)
        var current = previous
        for i in 1...a.count {
            current[0] = i
            var rowMinimum = i
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                rowMinimum = min(rowMinimum, current[j])
            }
            if rowMinimum > limit { return nil }
            swap(&previous, &current)
        }
        return previous[b.count] <= limit ? previous[b.count] : nil
    }
}

// MARK: - Reload

extension Settings {
    /// How a running daemon takes a changed key on SIGHUP.
    public enum ReloadEffect: Sendable, Equatable {
        /// Used from the reload on (new connections get it; open ones keep the value they started with).
        case live
        /// Fixed when the sockets are bound: only a restart changes it.
        case restart
    }

    /// One key: how a reload treats it, whether two settings differ in it, and how to take it over.
    struct Field {
        var effect: ReloadEffect
        var differs: (Settings, Settings) -> Bool
        var adopt: (inout Settings, Settings) -> Void

        static func of<Value: Equatable>(_ path: WritableKeyPath<Settings, Value>, _ effect: ReloadEffect) -> Field {
            Field(effect: effect, differs: { $0[keyPath: path] != $1[keyPath: path] }, adopt: { $0[keyPath: path] = $1[keyPath: path] })
        }
    }

    /// Every key's field; the switch is exhaustive so a new key cannot be left unclassified.
    static func field(_ key: CodingKeys) -> Field {
        switch key {
        case .maxHANFrameBytes: .of(\.maxHANFrameBytes, .live)
        case .maxHANConnections: .of(\.maxHANConnections, .live)
        case .maxLinksPerDevice: .of(\.maxLinksPerDevice, .live)
        case .helloTimeoutSeconds: .of(\.helloTimeoutSeconds, .live)
        case .maxPerDeviceSockets: .of(\.maxPerDeviceSockets, .restart)  // the per-device sockets are bound at start
        case .maxControlConnections: .of(\.maxControlConnections, .live)
        case .maxControlLineBytes: .of(\.maxControlLineBytes, .live)
        case .maxEventBacklogBytes: .of(\.maxEventBacklogBytes, .live)  // for connections opened after the reload
        case .maxGeneratePremises: .of(\.maxGeneratePremises, .live)
        case .historyDays: .of(\.historyDays, .live)
        case .maxImageBytes: .of(\.maxImageBytes, .live)
        case .seedHistoryDays: .of(\.seedHistoryDays, .live)
        case .maxTracedDevices: .of(\.maxTracedDevices, .live)
        case .socketMode: .of(\.socketMode, .restart)  // applied to the socket files and folders when bound
        case .socketGroup: .of(\.socketGroup, .restart)
        case .imagesDirectory: .of(\.imagesDirectory, .live)
        case .maxUploadBytes: .of(\.maxUploadBytes, .live)
        case .storageProbeSeconds: .of(\.storageProbeSeconds, .restart)  // the probe's timer is set at start
        case .maxFaultRules: .of(\.maxFaultRules, .live)
        case .bulkThreadNice: .of(\.bulkThreadNice, .live)  // taken by each long write when it starts
        case .duis: .of(\.duis, .restart)  // the listener, the checks and the deliveries take it at start
        }
    }

    /// How SIGHUP treats `key`.
    public static func reloadEffect(of key: CodingKeys) -> ReloadEffect { field(key).effect }

    /// The keys that differ between the settings in force and the reloaded file: those a reload
    /// applies, and those that only take effect after a restart. Both in docs/settings.md order.
    public static func reloadPlan(from old: Settings, to new: Settings) -> (applied: [String], needsRestart: [String]) {
        var applied: [String] = [], needsRestart: [String] = []
        for key in CodingKeys.allCases where field(key).differs(old, new) {
            if field(key).effect == .live { applied.append(key.rawValue) } else { needsRestart.append(key.rawValue) }
        }
        return (applied, needsRestart)
    }

    /// The settings in force after reloading `new`: its live keys, and this value's restart-only
    /// keys (still what the sockets were bound with, so the next reload reports them again).
    public func reloaded(with new: Settings) -> Settings {
        var result = self
        for key in CodingKeys.allCases where Self.field(key).effect == .live { Self.field(key).adopt(&result, new) }
        return result
    }
}

/// The settings in force, shared by the components that read a limit when they need it (a new
/// connection takes the current limits; one already open keeps those it started with).
public final class LiveSettings: Sendable {
    private let value: Mutex<Settings>

    public init(_ settings: Settings) { value = Mutex(settings) }

    /// The settings in force now.
    public var current: Settings { value.withLock { $0 } }

    /// Applies a reloaded file's live keys; returns what changed, as `Settings.reloadPlan` does.
    @discardableResult
    public func reload(_ new: Settings) -> (applied: [String], needsRestart: [String]) {
        value.withLock { current in
            let plan = Settings.reloadPlan(from: current, to: new)
            current = current.reloaded(with: new)
            return plan
        }
    }
}
