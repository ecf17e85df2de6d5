import Foundation
import SMETSClient
import SMETSRPC

/// How `firmware push` and `firmware check --daemon` hand an image to smetsd: the bytes, read here
/// with the user's rights, never a path smetsd would open with its own. Small images travel in the
/// request; larger ones in chunks (`firmware.upload.*`) on the same connection, with a progress bar
/// on standard error for people.
enum FirmwareSend {
    /// Images up to this size go inline as base64 (well under the daemon's default 1 MiB line).
    static let inlineLimit = 512 * 1024

    /// The params naming the image: `image`, `upload`, or (with `stored`) `path` inside smetsd's
    /// imagesDirectory.
    static func imageParams(file: String, stored: Bool, client: ControlClient, progress: Bool) throws -> [String: JSONValue] {
        if stored { return ["path": .string(file)] }
        let bytes = try FirmwareFiles.read(file)
        if bytes.count <= inlineLimit { return ["image": .string(Data(bytes).base64EncodedString())] }
        let begun = try client.call("firmware.upload.begin", params: ["size": .int(Int64(bytes.count))])
        guard let id = begun["upload"]?.stringValue else { throw ControlClientError.protocolError("firmware.upload.begin gave no upload ID") }
        let chunk = min(256 * 1024, max(1024, Int(begun["chunkBytes"]?.intValue ?? 256 * 1024)))
        let bar = UploadBar(enabled: progress, total: bytes.count)
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunk)
            _ = try client.call("firmware.upload.chunk", params: [
                "upload": .string(id), "offset": .int(Int64(offset)), "data": .string(Data(bytes[offset..<end]).base64EncodedString()),
            ])
            offset = end
            bar.show(offset)
        }
        bar.clear()
        _ = try client.call("firmware.upload.commit", params: ["upload": .string(id), "sha256": .string(FirmwareFiles.sha256(bytes))])
        return ["upload": .string(id)]
    }
}

/// `upload [######........]  42%  1048576/2500000 bytes` on standard error while chunks go out.
struct UploadBar {
    let enabled: Bool
    let total: Int
    private let tty = Terminal.standardErrorIsTTY

    init(enabled: Bool, total: Int) { self.enabled = enabled; self.total = total }

    func show(_ sent: Int) {
        guard enabled else { return }
        let percent = min(100, sent * 100 / max(1, total))
        if tty {
            let filled = percent * 30 / 100
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
            Terminal.writeError("\r\u{1B}[2Kupload [\(bar)] \(String(percent).leftPadded(3))%  \(sent)/\(total) bytes")
        } else if sent == total {
            Terminal.writeError("upload: \(total) bytes sent\n")
        }
    }

    func clear() { if enabled && tty { Terminal.writeError("\r\u{1B}[2K") } }
}
