import Foundation
import SMETSCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Reads an image a request names by `path`, only from inside `imagesDirectory`.
///
/// The daemon has more rights than many of its callers, so a path is never opened as given (a
/// confused deputy): it must be relative, without `.` or `..`, and every component is opened with
/// `openat(O_NOFOLLOW)` from the folder down, so no symbolic link, however placed, leads out. Errors
/// name the path the caller gave and never any byte of the file.
enum ImagesFolder {
    static func read(name: String, settings: Settings, labDirectory: String) throws -> [UInt8] {
        guard let configured = settings.imagesDirectory else {
            throw DomainError(.pathRefused, "path is refused: no imagesDirectory is set in smetsd.json; send the image's bytes (image, or firmware.upload.*) instead")
        }
        let folder = configured.hasPrefix("/") ? configured : labDirectory + "/" + configured
        let components = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !name.isEmpty, !name.hasPrefix("/"), !name.utf8.contains(0),
              components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
            throw DomainError(.pathRefused, "path '\(name)' is refused: name a file inside imagesDirectory, relative, without '.' or '..'")
        }
        var directory = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { throw DomainError(.pathRefused, "imagesDirectory cannot be opened (\(String(cString: strerror(errno))))") }
        defer { close(directory) }
        for component in components.dropLast() {
            let next = openat(directory, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else { throw refusal(name, errno) }
            close(directory)
            directory = next
        }
        // O_NONBLOCK: a FIFO placed in the folder must not hang the call.
        let file = openat(directory, components[components.count - 1], O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard file >= 0 else { throw refusal(name, errno) }
        defer { close(file) }
        var status = stat()
        guard fstat(file, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            throw DomainError(.pathRefused, "path '\(name)' is refused: not a regular file in imagesDirectory")
        }
        let limit = settings.maxImageBytes
        guard Int(status.st_size) <= limit else {
            throw DomainError(.limitExceeded, "path '\(name)' is \(status.st_size) bytes, over the limit of \(limit) (maxImageBytes)")
        }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { pread(file, $0.baseAddress! + filled, $0.count - filled, off_t(filled)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw DomainError(.pathRefused, "path '\(name)' could not be read to its end") }
            filled += count
        }
        return bytes
    }

    private static func refusal(_ name: String, _ code: Int32) -> DomainError {
        switch code {
        case ELOOP, ENOTDIR: DomainError(.pathRefused, "path '\(name)' is refused: it passes through a symbolic link or a non-folder")
        case ENOENT: DomainError(.pathRefused, "path '\(name)' is refused: no such file in imagesDirectory")
        default: DomainError(.pathRefused, "path '\(name)' is refused: \(String(cString: strerror(code)))")
        }
    }
}

/// Images sent in chunks (`firmware.upload.begin` / `chunk` / `commit`), for images too large for one
/// request line. Each belongs to the connection that began it and is freed when that connection
/// closes; all of them together hold at most `maxUploadBytes`.
final class FirmwareUploads: Sendable {
    struct Upload {
        var owner: ObjectIdentifier
        var size: Int
        var bytes: [UInt8]
        var committed = false
    }

    private let uploads = Mutex<(next: UInt64, byID: [String: Upload])>((1, [:]))

    /// Reserves `size` bytes for a new upload by `owner`; returns its ID.
    func begin(owner: ObjectIdentifier, size: Int, settings: Settings) throws -> String {
        guard size >= 1 else { throw DomainError(.invalidState, "size must be at least 1 byte") }
        guard size <= settings.maxImageBytes else {
            throw DomainError(.limitExceeded, "the image is \(size) bytes, over the limit of \(settings.maxImageBytes) (maxImageBytes)")
        }
        return try uploads.withLock { state in
            let held = state.byID.values.reduce(0) { $0 + $1.size }
            guard held + size <= settings.maxUploadBytes else {
                throw DomainError(.limitExceeded, "uploads hold \(held) bytes; \(size) more is over the limit of \(settings.maxUploadBytes) (maxUploadBytes)")
            }
            let id = "u\(state.next)"
            state.next += 1
            var upload = Upload(owner: owner, size: size, bytes: [])
            upload.bytes.reserveCapacity(size)
            state.byID[id] = upload
            return id
        }
    }

    /// Appends `data` at `offset`, which must be where the previous chunk ended (a resent or skipped
    /// chunk is refused, never silently merged). Returns the bytes received so far.
    func chunk(owner: ObjectIdentifier, id: String, offset: Int, data: [UInt8]) throws -> Int {
        try uploads.withLock { state in
            guard var upload = state.byID[id], upload.owner == owner else { throw Self.unknown(id) }
            guard !upload.committed else { throw DomainError(.invalidState, "upload \(id) is already committed") }
            guard offset == upload.bytes.count else {
                throw DomainError(.invalidState, "upload \(id) has \(upload.bytes.count) bytes; the next chunk starts there, not at \(offset)")
            }
            guard upload.bytes.count + data.count <= upload.size else {
                throw DomainError(.limitExceeded, "upload \(id) was begun for \(upload.size) bytes; this chunk runs past it")
            }
            state.byID[id] = nil  // so the append does not copy the buffer
            upload.bytes.append(contentsOf: data)
            state.byID[id] = upload
            return upload.bytes.count
        }
    }

    /// Marks the upload complete; it must have all the bytes begun for.
    func commit(owner: ObjectIdentifier, id: String) throws -> [UInt8] {
        try uploads.withLock { state in
            guard var upload = state.byID[id], upload.owner == owner else { throw Self.unknown(id) }
            guard upload.bytes.count == upload.size else {
                throw DomainError(.invalidState, "upload \(id) has \(upload.bytes.count) of its \(upload.size) bytes")
            }
            upload.committed = true
            state.byID[id] = upload
            return upload.bytes
        }
    }

    /// A committed upload's bytes, for `firmware.check` / `firmware.update` on the same connection.
    func image(owner: ObjectIdentifier, id: String) throws -> [UInt8] {
        try uploads.withLock { state in
            guard let upload = state.byID[id], upload.owner == owner else { throw Self.unknown(id) }
            guard upload.committed else { throw DomainError(.invalidState, "upload \(id) is not committed yet (firmware.upload.commit)") }
            return upload.bytes
        }
    }

    /// Frees the upload; true if there was one.
    @discardableResult
    func discard(owner: ObjectIdentifier, id: String) -> Bool {
        uploads.withLock { state in
            guard state.byID[id]?.owner == owner else { return false }
            state.byID[id] = nil
            return true
        }
    }

    /// Frees every upload of a closed connection.
    func discardAll(owner: ObjectIdentifier) {
        uploads.withLock { state in state.byID = state.byID.filter { $0.value.owner != owner } }
    }

    /// Bytes reserved by uploads now.
    var heldBytes: Int { uploads.withLock { $0.byID.values.reduce(0) { $0 + $1.size } } }

    private static func unknown(_ id: String) -> DomainError {
        DomainError(.invalidState, "no upload \(id) on this connection (uploads end with the connection that began them)")
    }
}
