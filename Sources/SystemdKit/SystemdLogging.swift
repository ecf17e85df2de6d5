#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

/// Chooses and installs the process's log handler: the journal when running under systemd,
/// otherwise lines on standard error.
public enum SystemdLogging {
    /// Where log events go.
    public enum Backend: Sendable, Equatable {
        /// Structured entries in the journal (``JournaldLogHandler``).
        case journal
        /// Lines on standard error (``TextLogHandler``) in the given format.
        case text(TextLogHandler.Format)
    }

    /// The journal's native socket.
    public static let journalSocketPath = "/run/systemd/journal/socket"

    /// Installs the handler for every `Logger` of the process (`LoggingSystem.bootstrap`, which
    /// may be called only once per process).
    ///
    /// - Parameters:
    ///   - label: the syslog identifier for journal entries (e.g. `smetsd`). Each `Logger`'s own
    ///     label is still shown (text) or sent as `LOGGER=` (journal).
    ///   - level: the initial level of every handler.
    ///   - preferJournal: `true` forces the journal, `false` forces text, `nil` decides with
    ///     ``shouldUseJournal(environment:standardErrorIdentity:journalSocketExists:)``.
    ///   - format: the text format, when text is chosen.
    ///   - metadataProvider: contextual metadata merged into every event.
    /// - Returns: the backend installed.
    @discardableResult
    public static func bootstrap(
        label: String, level: Logger.Level = .info, preferJournal: Bool? = nil,
        format: TextLogHandler.Format = .text, metadataProvider: Logger.MetadataProvider? = nil
    ) -> Backend {
        let backend = chooseBackend(preferJournal: preferJournal, format: format)
        LoggingSystem.bootstrap({ loggerLabel, provider in
            makeHandler(backend: backend, label: loggerLabel, identifier: label, level: level,
                        metadataProvider: provider)
        }, metadataProvider: metadataProvider)
        return backend
    }

    /// The backend ``bootstrap(label:level:preferJournal:format:metadataProvider:)`` would
    /// install, without installing it.
    public static func chooseBackend(preferJournal: Bool?, format: TextLogHandler.Format) -> Backend {
        let useJournal = preferJournal ?? shouldUseJournal(
            environment: currentEnvironment(["JOURNAL_STREAM", "INVOCATION_ID"]),
            standardErrorIdentity: fileIdentity(of: STDERR_FILENO),
            journalSocketExists: access(journalSocketPath, W_OK) == 0
        )
        return useJournal ? .journal : .text(format)
    }

    /// A handler for `backend`.
    public static func makeHandler(
        backend: Backend, label: String, identifier: String, level: Logger.Level,
        metadataProvider: Logger.MetadataProvider?
    ) -> any LogHandler {
        switch backend {
        case .journal:
            return JournaldLogHandler(label: label, identifier: identifier, level: level,
                                      metadataProvider: metadataProvider)
        case .text(let format):
            return TextLogHandler(label: label, format: format, level: level,
                                  metadataProvider: metadataProvider)
        }
    }

    /// Whether to log to the journal: yes when standard error *is* the journal (systemd set
    /// `JOURNAL_STREAM=<device>:<inode>` and standard error still has that identity, so it was
    /// not redirected), or when the process runs as a systemd unit (`INVOCATION_ID` set) and the
    /// journal socket exists.
    /// - Parameters:
    ///   - environment: the variables `JOURNAL_STREAM` and `INVOCATION_ID`, if set.
    ///   - standardErrorIdentity: device and inode of file descriptor 2, if open.
    ///   - journalSocketExists: whether ``journalSocketPath`` can be written to.
    public static func shouldUseJournal(
        environment: [String: String], standardErrorIdentity: FileIdentity?, journalSocketExists: Bool
    ) -> Bool {
        if let stream = environment["JOURNAL_STREAM"].flatMap(FileIdentity.init(journalStream:)),
           stream == standardErrorIdentity
        {
            return true
        }
        if let invocation = environment["INVOCATION_ID"], !invocation.isEmpty, journalSocketExists {
            return true
        }
        return false
    }

    /// The device and inode of an open file, as `fstat(2)` reports them.
    public static func fileIdentity(of fd: Int32) -> FileIdentity? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// The executable's file name (`program_invocation_short_name`), e.g. `smetsd`.
    public static func executableName() -> String {
        let path = CommandLine.arguments.first ?? "swift"
        return path.split(separator: "/").last.map(String.init) ?? path
    }

    static func currentEnvironment(_ names: [String]) -> [String: String] {
        var values: [String: String] = [:]
        for name in names {
            if let value = getenv(name) { values[name] = String(cString: value) }
        }
        return values
    }
}

/// A file's identity: its device and inode numbers.
public struct FileIdentity: Sendable, Hashable {
    /// The device number (`st_dev`).
    public var device: UInt64
    /// The inode number (`st_ino`).
    public var inode: UInt64

    /// Creates an identity from its numbers.
    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    /// Parses `JOURNAL_STREAM` (`<device>:<inode>`, both decimal); `nil` if malformed.
    public init?(journalStream text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else {
            return nil
        }
        self.init(device: device, inode: inode)
    }
}
