import Foundation
import ArgumentParser
import SMETSCore
import SMETSDCC
import SMETSRPC
import SMETSWire

struct FirmwareCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check an OTA image against the DCC's rules and a model's own, offline.",
        discussion: """
            Reads the image and the devices folder (models, cpl.csv, lab.json) and prints the two layers \
            an image meets, one line per rule. First the DCC's, made before a firmware update reaches the \
            hub: dccEligibility (device type, OTA, inventory), mp202Requirement7 (MP202 regime only), cpl \
            (the version, as the inventory would hold it, on the CPL). Then the device's own, the only \
            ones a rig serving an image over the HAN link meets: format, size, manufacturer, imageType, \
            hardwareVersion, destination, signature, downgrade. Exits 1 if any rule fails, 2 on a usage error.

            The model is --model, else the one whose manufacturer code and image type the header names. \
            The mode defaults to SMETS2+ when the model supports it; --mode SMETS1 shows MP202 \
            Requirement 7 refusing a dual-mode PPMID (under the MP202 regime). The current firmware (for \
            the downgrade rule) defaults to the model's.

            --daemon asks the running smetsd instead (firmware.check) for --device as it is now: its \
            model, mode, hub, firmware and the daemon's CPL. The file is read here, with your rights, and \
            its bytes are sent (in chunks when large, with an upload bar); --stored names a file inside \
            smetsd's imagesDirectory instead, which smetsd reads.

            Examples:
              smetsctl firmware check acme-01030000.ota
              smetsctl firmware check acme-01030000.ota --model acme-ppmid-dm --mode SMETS1
              smetsctl firmware check image.ota --lab /etc/smetsd/devices --json | jq .accepted
              smetsctl firmware check acme-01030000.ota --daemon --device 00-DB-12-34-56-78-00-05
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The OTA image file.", valueName: "image"))
    var image: String

    @Option(help: ArgumentHelp("The device model to check against (a file name under models/, without .json).", valueName: "model"))
    var model: String?

    @Option(help: ArgumentHelp("The devices folder. Default: $SMETSD_LAB, else ./devices.", valueName: "dir"))
    var lab: String?

    @Option(help: ArgumentHelp("The SMETS mode the device works in: SMETS1 or SMETS2+.", valueName: "mode"), transform: ArgumentValues.mode)
    var mode: SMETSMode?

    @Option(help: ArgumentHelp("The firmware the device runs now (8 hex digits). Default: the model's.", valueName: "version"))
    var current: String?

    @Option(help: ArgumentHelp("The device, to compare with a device-specific image's destination.", valueName: "device-id"),
            transform: ArgumentValues.deviceID)
    var device: EUI64?

    @Option(help: ArgumentHelp("Read the file as gb or zigbee. Default: sub-elements if the body is exactly a run of them, else gb.",
                               valueName: "form"))
    var format: String?

    @Flag(help: "Ask the running smetsd (firmware.check) about --device as it is now.")
    var daemon = false

    @Flag(help: "With --daemon: the image is a file name inside smetsd's imagesDirectory, which smetsd reads.")
    var stored = false

    func validate() throws {
        if (daemon || stored) && device == nil { throw ValidationError("--daemon needs --device: the device to check the image against") }
        if stored && !daemon { throw ValidationError("--stored names a file in smetsd's imagesDirectory: use it with --daemon") }
        if let format, OTAImage.Format(rawValue: format) == nil { throw ValidationError("--format: '\(format)' is not gb or zigbee") }
        if let current, FirmwareVersion(hex: current) == nil { throw ValidationError("--current: '\(current)' is not 8 hex digits") }
    }

    func run() throws {
        if daemon { return try runOnDaemon() }
        let lab = try FirmwareLab.load(self.lab)
        let bytes = try FirmwareFiles.read(image)
        let verdict: FirmwareVerdict
        var dccChecks: [FirmwareCheck] = []
        var hash: String?
        var modelKey: String?
        var headerJSON: JSONValue = .null
        do {
            let parsed = try OTAImage(parsing: bytes, options: .init(maxImageBytes: lab.maxImageBytes, format: format.flatMap(OTAImage.Format.init(rawValue:))))
            hash = FirmwareFiles.sha256(parsed.manufacturerImage)
            headerJSON = Self.json(parsed)
            let model: DeviceModel
            if let key = self.model {
                model = try lab.model(key)
            } else {
                let matches = lab.models.values.filter {
                    $0.manufacturer.numericCode == parsed.header.manufacturerCode && $0.numericImageType == parsed.header.imageType
                }
                guard matches.count == 1, let only = matches.first else {
                    throw ValidationError("""
                        \(matches.isEmpty ? "no" : "more than one") model in \(lab.directory)/models has manufacturer code \
                        \(upperHex(parsed.header.manufacturerCode, width: 4)) and image type \(upperHex(parsed.header.imageType, width: 4)); \
                        name one with --model
                        """)
                }
                model = only
            }
            modelKey = model.key
            let mode = self.mode ?? (model.smetsVersions.contains(.smets2) ? .smets2 : SMETSMode(model.smetsVersions.first ?? .smets2))
            let currentVersion = current.flatMap { FirmwareVersion(hex: $0) } ?? model.firmwareVersion
            let target = FirmwareTarget(model: model, device: device, mode: mode, currentFirmware: currentVersion)
            verdict = FirmwareRules.check(parsed.firmwareCandidate, format: parsed.formatDescription, for: target,
                                          maxImageBytes: lab.maxImageBytes, key: lab.signingKey(for: model))
            dccChecks = Self.dccChecks(fileVersion: FirmwareVersion(parsed.header.fileVersion), model: model, mode: mode, lab: lab, device: device)
        } catch let error as OTAImageError {
            verdict = FirmwareRules.unreadable("\(error.reason): \(error.description)")
        }
        let failures = verdict.failures.count + dccChecks.filter { !$0.passed }.count
        let accepted = failures == 0
        if global.json {
            func json(_ check: FirmwareCheck, _ layer: String) -> JSONValue {
                ["name": .string(check.name), "outcome": .string(check.outcome.rawValue), "passed": .bool(check.passed), "reason": .string(check.reason),
                 "layer": .string(layer)]
            }
            let dcc = dccChecks.map { json($0, "dcc") }, device = verdict.checks.map { json($0, "device") }
            let result: JSONValue = [
                "image": .string(image), "accepted": .bool(accepted), "model": modelKey.map { .string($0) } ?? .null,
                "hash": hash.map { .string($0) } ?? .null, "header": headerJSON,
                "checks": .array(dcc + device), "dcc": .array(dcc), "device": .array(device),
            ]
            Terminal.write(result.serialized() + "\n")
        } else {
            let width = (dccChecks + verdict.checks).map(\.name.count).max() ?? 0
            if !dccChecks.isEmpty {
                Terminal.write("The DCC (before the hub sends anything):\n" + Self.render(dccChecks, width: width))
            }
            Terminal.write("The device (what a rig serving it over the HAN link meets):\n" + Self.render(verdict.checks, width: width))
            if let hash { Terminal.write("Manufacturer Image SHA-256 \(hash)\n") }
            Terminal.write(accepted ? "accepted\(modelKey.map { " for \($0)" } ?? "")\n" : "rejected: \(failures) check\(failures == 1 ? "" : "s") failed\n")
        }
        if !accepted { throw ExitCode(ExitStatus.refused) }
    }

    func runOnDaemon() throws {
        guard let device else { return }
        let showProgress = !global.json
        let result = try global.session(defaultTimeout: .seconds(300)) { client in
            var params = try FirmwareSend.imageParams(file: image, stored: stored, client: client, progress: showProgress)
            params["device"] = .string(device.description)
            return try client.call("firmware.check", params: .object(params))
        }
        func checks(_ key: String) -> [FirmwareCheck] {
            (result[key]?.arrayValue ?? []).map { entry in
                let outcome = FirmwareCheck.Outcome(rawValue: entry["outcome"]?.stringValue ?? "") ?? .fail
                return FirmwareCheck(entry["name"]?.stringValue ?? "?", outcome, entry["reason"]?.stringValue ?? "")
            }
        }
        let accepted = result["accepted"]?.boolValue == true
        global.output(result) { _ in
            let dcc = checks("dcc"), own = checks("device")
            let width = (dcc + own).map(\.name.count).max() ?? 0
            var text = dcc.isEmpty ? "" : "The DCC (before the hub sends anything):\n" + Self.render(dcc, width: width)
            text += "The device \(device) (as smetsd holds it now):\n" + Self.render(own, width: width)
            let failures = (dcc + own).filter { !$0.passed }.count
            return text + (accepted ? "accepted\n" : "rejected: \(failures) check\(failures == 1 ? "" : "s") failed\n")
        }
        if !accepted { throw ExitCode(ExitStatus.refused) }
    }

    /// The DCC's checks for a device of `model` joined and commissioned in `mode`, as the lab's CPL
    /// and regime decide them.
    static func dccChecks(fileVersion: FirmwareVersion, model: DeviceModel, mode: SMETSMode, lab: FirmwareLab, device: EUI64?) -> [FirmwareCheck] {
        guard let version = mode.version else { return [] }
        let hubID = EUI64(0x00DB_0000_0000_0001)
        let hub = Device(id: hubID, type: .chf, premisesID: "P", modelKey: "hub", owner: "MAP", preNotified: version, status: .commissioned,
                         mode: mode, firmwareVersion: FirmwareVersion(0), smetsVersion: version, region: .north)
        let target = Device(id: device ?? EUI64(0x00DB_0000_0000_0005), type: model.type, premisesID: "P", modelKey: model.key, owner: "MAP",
                            preNotified: version, status: .commissioned, mode: mode, hub: hubID, firmwareVersion: model.firmwareVersion, region: .north)
        return DCCRules(cpl: lab.cpl, regime: lab.regime).firmwareChecks(fileVersion: fileVersion, device: target, model: model, hub: hub)
    }

    /// The file as read: every header field, the form and the parts, for scripts and interop tests.
    static func json(_ image: OTAImage) -> JSONValue {
        let header = image.header
        return [
            "format": .string(image.format.rawValue), "headerVersion": .int(Int64(OTAImageHeader.currentHeaderVersion)),
            "headerLength": .int(Int64(header.headerLength)), "fieldControl": .int(Int64(header.fieldControl)),
            "manufacturerCode": .int(Int64(header.manufacturerCode)), "imageType": .int(Int64(header.imageType)),
            "fileVersion": .int(Int64(header.fileVersion)), "zigbeeStackVersion": .int(Int64(header.zigbeeStackVersion)),
            "headerString": .string(header.headerString), "totalImageSize": .int(Int64(header.totalImageSize)),
            "securityCredentialVersion": header.securityCredentialVersion.map { .int(Int64($0)) } ?? .null,
            "upgradeFileDestination": header.upgradeFileDestination.map { .string($0.description) } ?? .null,
            "minimumHardwareVersion": header.hardwareVersions.map { .int(Int64($0.minimum)) } ?? .null,
            "maximumHardwareVersion": header.hardwareVersions.map { .int(Int64($0.maximum)) } ?? .null,
            "manufacturerImageSize": .int(Int64(image.manufacturerImage.count)), "signed": .bool(image.signature != nil),
            "subElementTags": {
                if case let .subElements(elements) = image.payload { return .array(elements.map { .int(Int64($0.tag)) }) }
                return .null
            }(),
        ]
    }

    /// One line per check: `PASS  name             reason`.
    static func render(_ checks: [FirmwareCheck], width: Int? = nil) -> String {
        let width = width ?? checks.map(\.name.count).max() ?? 0
        return checks.map { check in
            let label = switch check.outcome { case .pass: "PASS"; case .fail: "FAIL"; case .notApplicable: "n/a " }
            return "\(label)  \(check.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(check.reason)\n"
        }.joined()
    }
}
