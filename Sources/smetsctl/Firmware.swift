import ArgumentParser

struct Firmware: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firmware",
        abstract: "Build, check, push and activate OTA firmware images.",
        discussion: """
            A GB firmware image is a Zigbee OTA header, then the raw Manufacturer Image, then (signed) \
            a u16 big-endian 0x0040 and the 64-byte ECDSA P-256 signature over header and Manufacturer \
            Image. The SHA-256 of the Manufacturer Image is the image's identity: the hash that \
            `firmware activate` names. `check` and `build` work offline on a devices folder; `push`, \
            `activate` and `version` talk to smetsd.

            Examples:
              smetsctl firmware build --model acme-ppmid-dm --version 01030000 --body fw.bin \\
                  --key devices/keys/acme-meters-TEST-private.pem --out acme-01030000.ota
              smetsctl firmware check acme-01030000.ota
              smetsctl firmware push acme-01030000.ota --device 00-DB-12-34-56-78-00-05 --activate later
              smetsctl firmware activate 00-DB-12-34-56-78-00-05 --hash 3f2a...
              smetsctl firmware version 00-DB-12-34-56-78-00-05
            """,
        subcommands: [FirmwareCheckCommand.self, FirmwareBuildCommand.self, FirmwarePushCommand.self, FirmwareActivateCommand.self, FirmwareVersionCommand.self])
}
