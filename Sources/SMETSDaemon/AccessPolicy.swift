#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// Who may call what, on the control socket and the HAN link.
public final class AccessPolicy: Sendable {
    /// Methods anyone may call.
    public static let publicMethods: Set<String> = ["daemon.status"]
    /// Methods a rig may call: the HAN and device-level ones.
    public static let rigMethods: Set<String> = publicMethods.union([
        "devices.list", "devices.get", "han.send", "han.trace", "han.topUp", "display.settings", "clock.get",
        "events.subscribe", "events.unsubscribe", "firmware.version",
        "faults.add", "faults.list", "faults.remove", "faults.clear", "han.capture", "han.links", "duis.responses",
    ])
    /// Methods a MAP or a manufacturer may call; the data they see is scoped to their own assets.
    public static let assetMethods: Set<String> = publicMethods.union(["assets.list", "assets.get"])

    private let configuration: Mutex<AccessConfiguration>
    /// The daemon's own uid: admin by default, like root.
    let ownUID: UInt32

    public init(configuration: AccessConfiguration = AccessConfiguration()) {
        self.configuration = Mutex(configuration)
        self.ownUID = getuid()
    }

    public func replace(_ configuration: AccessConfiguration) { self.configuration.withLock { $0 = configuration } }

    /// The role of a caller. Root and the daemon's own user are admin unless the configuration says otherwise.
    public func role(for peer: PeerCredentials?) -> Role {
        guard let peer else { return .anonymous }
        let roles = configuration.withLock { $0.roles }
        let userName = Self.userName(uid: peer.uid)
        let groupName = Self.groupName(gid: peer.gid)
        let candidates = ["uid:\(peer.uid)", userName.map { "user:\($0)" }, "gid:\(peer.gid)", groupName.map { "group:\($0)" }].compactMap { $0 }
        for key in candidates {
            if let text = roles[key], let role = Role(text: text) { return role }
        }
        if peer.uid == 0 || peer.uid == ownUID { return .admin }
        return .anonymous
    }

    /// nil when `role` may call `method`, else the sentence to refuse it with.
    public func refusal(method: String, role: Role) -> String? {
        let allowed: Bool = switch role {
        case .admin: true
        case .rig: Self.rigMethods.contains(method)
        case .map, .manufacturer: Self.assetMethods.contains(method)
        case .anonymous: Self.publicMethods.contains(method)
        }
        return allowed ? nil : "the \(role.kind) role may not call \(method)"
    }

    /// Whether a HAN link from this caller may attach to devices.
    public func mayAttach(_ role: Role) -> Bool { role == .admin || role == .rig }

    // The reentrant lookups: calls run on several threads at once. The names point into `buffer`,
    // so they are read while it is borrowed.
    static func userName(uid: UInt32) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        return buffer.withUnsafeMutableBufferPointer { storage -> String? in
            var entry = passwd()
            var result: UnsafeMutablePointer<passwd>?
            guard let base = storage.baseAddress, getpwuid_r(uid, &entry, base, storage.count, &result) == 0, result != nil,
                  let name = entry.pw_name else { return nil }
            return String(cString: name)
        }
    }

    static func groupName(gid: UInt32) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        return buffer.withUnsafeMutableBufferPointer { storage -> String? in
            var entry = group()
            var result: UnsafeMutablePointer<group>?
            guard let base = storage.baseAddress, getgrgid_r(gid, &entry, base, storage.count, &result) == 0, result != nil,
                  let name = entry.gr_name else { return nil }
            return String(cString: name)
        }
    }
}
