import ArgumentParser
import Crypto
import Foundation
import SMETSCore
import SMETSRPC
import SMETSWire

struct FirmwareBuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build a signed GB firmware image for a model, offline.",
        discussion: """
            Writes the OTA header (the model's manufacturer code and image type, --version), the body \
            as the Manufacturer Image, and the signature block: u16 big-endian 0x0040 and the 64-byte \
            ECDSA P-256 signature (raw r||s) by --key over the header and the Manufacturer Image. The \
            file is written to a temporary name and renamed into place.

            Examples:
              smetsctl firmware build --model acme-ppmid-dm --version 01030000 --body fw.bin \\
                  --key devices/keys/acme-meters-TEST-private.pem
              -> wrote acme-ppmid-dm-01030000.ota (...)
              smetsctl firmware build --model brightview-ihd --version 00070003 --body fw.bin --unsigned \\
                  --destination 00-DB-12-34-56-78-00-06 --hardware 1-3 --out ihd.ota
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The device model (a file name under models/, without .json).", valueName: "model"))
    var model: String

    @Option(help: ArgumentHelp("The image's file version, 8 hex digits (e.g. 01030000).", valueName: "version"))
    var version: String

    @Option(help: ArgumentHelp("The Manufacturer Image: the firmware itself.", valueName: "file"))
    var body: String

    @Option(help: ArgumentHelp("The manufacturer's P-256 private key (PEM) to sign with.", valueName: "key.pem"))
    var key: String?

    @Flag(help: "Write no signature block.")
    var unsigned = false

    @Option(help: ArgumentHelp("gb (header, Manufacturer Image, signature) or zigbee (header, one upgrade-image sub-element, unsigned).",
                               valueName: "form"))
    var format = "gb"

    @Option(help: ArgumentHelp("Where to write the image. Default: MODEL-VERSION.ota.", valueName: "file"))
    var out: String?

    @Option(help: ArgumentHelp("The devices folder. Default: $SMETSD_LAB, else ./devices.", valueName: "dir"))
    var lab: String?

    @Option(help: ArgumentHelp("The 32-byte header string. Default: the model name and version.", valueName: "text"))
    var headerString: String?

    @Option(help: ArgumentHelp("Make a device-specific image for this device.", valueName: "device-id"), transform: ArgumentValues.deviceID)
    var destination: EUI64?

    @Option(help: ArgumentHelp("The hardware versions the image is for, MIN-MAX.", valueName: "min-max"))
    var hardware: String?

    func validate() throws {
        guard FirmwareVersion(hex: version) != nil, version.count == 8 else { throw ValidationError("--version: '\(version)' is not 8 hex digits, e.g. 01030000") }
        if key == nil && !unsigned { throw ValidationError("give --key KEY.pem to sign, or --unsigned") }
        if key != nil && unsigned { throw ValidationError("--key and --unsigned do not go together") }
        guard format == "gb" || format == "zigbee" else { throw ValidationError("--format: '\(format)' is not gb or zigbee") }
        if format == "zigbee" && key != nil { throw ValidationError("a zigbee-form image carries no GB signature block: use --unsigned") }
        if let hardware, Self.hardwareRange(hardware) == nil { throw ValidationError("--hardware: '\(hardware)' is not MIN-MAX, e.g. 1-3") }
    }

    static func hardwareRange(_ text: String) -> OTAImageHeader.HardwareVersions? {
        let parts = text.split(separator: "-")
        guard parts.count == 2, let low = UInt16(parts[0]), let high = UInt16(parts[1]), low <= high else { return nil }
        return OTAImageHeader.HardwareVersions(minimum: low, maximum: high)
    }

    func run() throws {
        let lab = try FirmwareLab.load(self.lab)
        let model = try lab.model(self.model)
        let fileVersion = FirmwareVersion(hex: version)!
        let manufacturerImage = try FirmwareFiles.read(body)
        let header = OTAImageHeader(
            manufacturerCode: model.manufacturer.numericCode, imageType: model.numericImageType, fileVersion: fileVersion.rawValue,
            headerString: headerString ?? "\(model.modelName) \(fileVersion.hex)", upgradeFileDestination: destination,
            hardwareVersions: hardware.flatMap(Self.hardwareRange))
        let image: OTAImage
        if format == "zigbee" {
            image = OTAImage.zigbee(header: header, subElements: [OTASubElement(tag: OTASubElement.upgradeImageTag, data: manufacturerImage)])
        } else if let key {
            guard let pem = try? String(contentsOfFile: key, encoding: .utf8) else { throw ValidationError("cannot read \(key)") }
            let signingKey: P256.Signing.PrivateKey
            do { signingKey = try P256.Signing.PrivateKey(pemRepresentation: pem) } catch {
                throw ValidationError("\(key) is not a P-256 private key in PEM (PKCS#8 or SEC1)")
            }
            image = try OTAImage.gb(header: header, manufacturerImage: manufacturerImage) { content in
                Array(try signingKey.signature(for: content).rawRepresentation)
            }
        } else {
            image = OTAImage.gb(header: header, manufacturerImage: manufacturerImage)
        }
        let bytes = image.encoded()
        guard bytes.count <= lab.maxImageBytes else {
            throw ValidationError("the image would be \(bytes.count) bytes, over the limit of \(lab.maxImageBytes) (maxImageBytes)")
        }
        let path = out ?? "\(model.key)-\(fileVersion.hex).ota"
        try FirmwareFiles.write(bytes, to: path)
        let hash = FirmwareFiles.sha256(manufacturerImage)
        if global.json {
            let result: JSONValue = [
                "path": .string(path), "size": .int(Int64(bytes.count)), "hash": .string(hash), "signed": .bool(key != nil),
                "manufacturerCode": .string(model.manufacturer.code), "imageType": .string(model.otaImageType), "fileVersion": .string(fileVersion.hex),
            ]
            Terminal.write(result.serialized() + "\n")
        } else {
            Terminal.write("""
                wrote \(path): \(bytes.count) bytes, \(format == "gb" ? "GB" : "Zigbee") image \(model.manufacturer.code)/\(model.otaImageType) version \(fileVersion.hex), \
                \(key.map { "signed with \($0)" } ?? "unsigned")
                Manufacturer Image SHA-256 \(hash)

                """)
        }
    }
}
