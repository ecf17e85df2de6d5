import Foundation
import GRDB
import Synchronization

/// Why the state folder cannot take a write: what the disk said, in SQLite's words.
public enum StorageFault: String, Sendable, Hashable {
    /// SQLITE_FULL: no space left (ENOSPC), or a quota.
    case full
    /// SQLITE_READONLY: the file or the folder is read-only (a remount, permissions).
    case readOnly = "read_only"
    /// SQLITE_IOERR: a write or an fsync failed (EIO).
    case ioError = "io_error"
    /// SQLITE_CANTOPEN: a journal or WAL file could not be created.
    case cannotOpen = "cannot_open"

    /// The fault an error from the store stands for, or nil when it is not the disk's doing.
    public init?(_ error: any Error) {
        guard let error = error as? DatabaseError else { return nil }
        switch error.resultCode.primaryResultCode {
        case .SQLITE_FULL: self = .full
        case .SQLITE_READONLY: self = .readOnly
        case .SQLITE_IOERR: self = .ioError
        case .SQLITE_CANTOPEN: self = .cannotOpen
        default: return nil
        }
    }

    /// A sentence for people: what is wrong and what happens now.
    public var explanation: String {
        switch self {
        case .full: "the state folder is full"
        case .readOnly: "the state folder is read-only"
        case .ioError: "the state folder gave an I/O error"
        case .cannotOpen: "a file in the state folder cannot be created"
        }
    }
}

/// Whether the store takes writes: degraded from the first write that fails for the disk's reason,
/// healthy again from the first that succeeds (a caller's or the recovery probe's). Each change is
/// reported once to the observer (the daemon logs it and tells systemd).
public final class StoreHealth: Sendable {
    public struct Degraded: Sendable, Hashable {
        public var fault: StorageFault
        /// SQLite's message for the failure that degraded the store.
        public var detail: String
        public var since: Date
    }

    private let state = Mutex<Degraded?>(nil)
    private let observer = Mutex<(@Sendable (Degraded?) -> Void)?>(nil)

    public init() {}

    /// nil while writes succeed.
    public var degraded: Degraded? { state.withLock { $0 } }

    /// Called with the new condition each time it changes (on the thread of the write that changed it).
    public func observe(_ body: @escaping @Sendable (Degraded?) -> Void) { observer.withLock { $0 = body } }

    func failed(_ fault: StorageFault, _ error: any Error) {
        let entered = state.withLock { current -> Degraded? in
            guard current == nil else { return nil }
            let degraded = Degraded(fault: fault, detail: "\(error)", since: Date())
            current = degraded
            return degraded
        }
        if let entered { observer.withLock { $0 }?(entered) }
    }

    func succeeded() {
        // The common case (healthy) takes the lock once and returns.
        let recovered = state.withLock { current -> Bool in
            guard current != nil else { return false }
            current = nil
            return true
        }
        if recovered { observer.withLock { $0 }?(nil) }
    }
}
