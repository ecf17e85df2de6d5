import ArgumentParser
import Dispatch
import Foundation
import SMETSClient
import SMETSCore
import SMETSRPC

struct FirmwarePushCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Have the emulated hub push an image to devices over the HAN (firmware.update).",
        discussion: """
            Each device's Communications Hub sends Image Notify; the device queries, downloads the \
            image block by block, checks it against its firmware rules and ends with Upgrade End \
            Request SUCCESS or INVALID_IMAGE. The hub's Upgrade End Response then says when to \
            activate: --activate now (default), at an RFC 3339 time on the virtual clock, or later \
            (the device holds the image until `smetsctl firmware activate`). A progress bar on \
            standard error follows the download. Exits 1 unless every device took the image.

            smetsctl reads the file with your rights and sends its bytes: up to 512 KiB in the \
            request, larger ones in chunks (firmware.upload.*, at most maxImageBytes) with an upload \
            bar. smetsd never opens a path you name unless --stored says the file is in its \
            imagesDirectory (smetsd.json); then the image argument is the name inside that folder.

            Examples:
              smetsctl firmware push acme-01030000.ota --device 00-DB-12-34-56-78-00-05
              smetsctl firmware push ihd.ota --device 00-DB-12-34-56-78-00-06 --activate 2027-01-01T02:00:00Z
              smetsctl firmware push acme-01030000.ota --device 00-DB-12-34-56-78-00-05 --activate later
              smetsctl firmware update acme/01030000.ota --stored --device 00-DB-12-34-56-78-00-05
            """,
        aliases: ["update"])

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The OTA image file.", valueName: "image"))
    var image: String

    @Option(name: .customLong("device"), parsing: .singleValue,
            help: ArgumentHelp("A device to upgrade (a PPMID or IHD joined to a hub); repeat for several.", valueName: "device-id"),
            transform: ArgumentValues.deviceID)
    var devices: [EUI64] = []

    @Option(help: ArgumentHelp("When to activate: now, later, or an RFC 3339 time.", valueName: "now|later|time"))
    var activate = "now"

    @Flag(help: "The image is a file name inside smetsd's imagesDirectory, which smetsd reads (nothing is sent).")
    var stored = false

    func validate() throws {
        if devices.isEmpty { throw ValidationError("name at least one --device") }
        if activate != "now" && activate != "later" && !RFC3339.isValid(activate) {
            throw ValidationError("--activate: '\(activate)' is not now, later or an RFC 3339 time such as 2027-01-01T02:00:00Z")
        }
    }

    func run() throws {
        var params: [String: JSONValue] = [
            "targets": .array(devices.map { .string($0.description) }), "activate": .string(activate),
        ]
        let progress = FirmwareProgress(enabled: !global.json)
        let watcher = global.json ? nil : try? ControlClient(socketPath: global.socketPath, timeout: .seconds(5))
        let done = StopSignal()
        if let watcher {
            _ = try? watcher.call("events.subscribe", params: ["types": .array(FirmwareProgress.types.map { .string($0) })])
            DispatchQueue.global().async {
                while true {
                    do {
                        if let notification = try watcher.nextNotification(timeout: .milliseconds(100)) {
                            if notification.method == "event", let event = notification.params { progress.show(event) }
                        } else if done.isSet {
                            break
                        }
                    } catch {
                        break
                    }
                }
                done.finished()
            }
        }
        let showProgress = !global.json
        let result = try global.session(defaultTimeout: .seconds(900)) { client in
            // The upload and the update share the connection: an upload belongs to the one that began it.
            params.merge(try FirmwareSend.imageParams(file: image, stored: stored, client: client, progress: showProgress)) { $1 }
            return try client.call("firmware.update", params: .object(params))
        }
        done.set()
        if watcher != nil { done.waitFinished() }
        watcher?.close()
        progress.clear()
        let results = result["results"]?.arrayValue ?? []
        global.output(result) { result in
            var text = "image \(Format.text(result["hash"])) version \(Format.text(result["fileVersion"])) (\(Format.text(result["imageSize"])) bytes)\n"
            for entry in results {
                text += "\(Format.text(entry["device"])): \(Format.text(entry["outcome"])): \(Format.text(entry["reason"]))\n"
                for check in entry["checks"]?.arrayValue ?? [] where check["passed"]?.boolValue == false {
                    text += "    FAIL \(Format.text(check["name"])): \(Format.text(check["reason"]))\n"
                }
            }
            return text
        }
        let took: Set<String> = ["activated", "scheduled", "waiting"]
        if !results.allSatisfy({ took.contains($0["outcome"]?.stringValue ?? "") }) { throw ExitCode(ExitStatus.refused) }
    }
}

/// A progress bar on standard error, drawn from firmware events.
final class FirmwareProgress: @unchecked Sendable {
    static let types = ["firmware.downloadStarted", "firmware.progress", "firmware.downloaded", "firmware.rejected", "firmware.aborted",
                        "firmware.activated", "firmware.scheduled", "firmware.waiting", "firmware.refused", "firmware.activationFailed"]
    private let lock = NSLock()
    private let enabled: Bool
    private let tty = Terminal.standardErrorIsTTY
    private var drawn = false
    private var lastDecile: [String: Int] = [:]

    init(enabled: Bool) { self.enabled = enabled }

    func show(_ event: JSONValue) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        let type = event["type"]?.stringValue ?? ""
        let device = event["device"]?.stringValue ?? ""
        let data = event["data"]
        switch type {
        case "firmware.progress":
            let offset = Int(data?["fileOffset"]?.intValue ?? 0), size = Int(data?["imageSize"]?.intValue ?? 1)
            let percent = min(100, offset * 100 / max(1, size))
            if tty {
                let filled = percent * 30 / 100
                let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
                Terminal.writeError("\r\u{1B}[2K[\(bar)] \(String(percent).leftPadded(3))%  \(device)  \(offset)/\(size) bytes")
                drawn = true
            } else if percent / 10 != lastDecile[device] {
                lastDecile[device] = percent / 10
                Terminal.writeError("\(device): \(percent)% (\(offset)/\(size) bytes)\n")
            }
        default:
            if drawn { Terminal.writeError("\r\u{1B}[2K"); drawn = false }
            let name = type.replacingOccurrences(of: "firmware.", with: "")
            let detail = ["hash", "to", "activateAt", "reason"].compactMap { key in data?[key]?.stringValue.map { "\(key)=\($0)" } }
            Terminal.writeError("\(device): \(name)\(detail.isEmpty ? "" : " " + detail.joined(separator: " "))\n")
        }
    }

    func clear() {
        lock.lock()
        defer { lock.unlock() }
        if drawn { Terminal.writeError("\r\u{1B}[2K"); drawn = false }
    }
}

/// A one-way signal between the caller and the event reader.
final class StopSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    private let stopped = DispatchSemaphore(value: 0)
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
    func finished() { stopped.signal() }
    func waitFinished() { _ = stopped.wait(timeout: .now() + .seconds(2)) }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
