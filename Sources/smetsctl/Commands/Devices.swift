import ArgumentParser

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, show, create and remove devices.",
        discussion: """
            Devices are named by their EUI-64 Device ID, written 00-DB-12-34-56-78-90-A1.

            Examples:
              smetsctl devices list --premises P0001
              smetsctl devices show 00-DB-12-34-56-78-90-A1
              smetsctl devices create --type PPMID --premises P0001 --model acme-ppmid-dm --prenotified SMETS2+
              smetsctl devices remove 00-DB-12-34-56-78-90-B0
            """,
        subcommands: [DevicesList.self, DevicesShow.self, DevicesCreate.self, DevicesRemove.self],
        defaultSubcommand: DevicesList.self)
}
