import ArgumentParser
import Foundation
import SMETSCore
import SMETSRPC

struct HANCapture: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Write the HAN's frames as a live pcap, for Wireshark or tshark.",
        discussion: """
            The frames of a device (--device), of a premises' devices (--premises) or of the whole \
            HAN (neither), from now on, as IEEE 802.15.4 / Zigbee NWK / APS / ZCL (pcap link type \
            195): what a sniffer beside the devices would see. Frames a fault dropped are absent, a \
            duplicated frame is there twice, a corrupted one as it was sent. Timestamps are on the \
            virtual clock; --logical stamps frame n at n ms after 2000-01-01, so that two seeded \
            runs with the same traffic give byte-identical files. --format pcapng writes pcapng \
            (Section Header, Interface Description with if_tsresol, Enhanced Packet Blocks) instead \
            of pcap. Runs until interrupted, or --count frames.

            Examples:
              smetsctl han capture --premises P0001 -w - | wireshark -k -i -
              smetsctl han capture --device 00-DB-12-34-56-78-00-05 -w ota.pcap --count 500
              smetsctl han capture -w - | tshark -r - -V
              smetsctl han capture --format pcapng --premises P0001 -w han.pcapng
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Only this device's frames.", valueName: "id"), transform: ArgumentValues.deviceID)
    var device: EUI64?

    @Option(help: ArgumentHelp("Only the frames of this premises' devices.", valueName: "premises"))
    var premises: String?

    @Option(name: .customShort("w"), help: ArgumentHelp("Where to write the pcap: a file, or - for standard output.", valueName: "file"))
    var write: String = "-"

    @Option(help: ArgumentHelp("Stop after this many frames.", valueName: "n"))
    var count: Int?

    @Flag(help: "Stamp frame n at n ms after 2000-01-01 instead of its virtual time (reproducible bytes).")
    var logical = false

    @Option(help: ArgumentHelp("pcap (default) or pcapng.", valueName: "format"))
    var format: String = "pcap"

    func validate() throws {
        if device != nil && premises != nil { throw ValidationError("name --device or --premises, not both") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if format != "pcap" && format != "pcapng" { throw ValidationError("--format must be pcap or pcapng") }
        if write == "-" && Terminal.standardOutputIsTTY {
            throw ValidationError("a pcap is binary: write it to a file (-w FILE) or a pipe (-w - | wireshark -k -i -)")
        }
    }

    func run() throws {
        var params: [String: JSONValue] = ["clock": .string(logical ? "logical" : "virtual"), "format": .string(format)]
        if let device { params["device"] = .string(device.description) }
        if let premises { params["premises"] = .string(premises) }
        let output: FileHandle
        if write == "-" {
            output = FileHandle.standardOutput
        } else {
            guard FileManager.default.createFile(atPath: write, contents: nil), let file = FileHandle(forWritingAtPath: write) else {
                throw ValidationError("cannot write \(write)")
            }
            output = file
        }
        try global.session { client in
            let result = try client.call("han.capture", params: .object(params))
            guard let header = result["header"]?.stringValue.flatMap({ Data(base64Encoded: $0) }) else {
                throw ValidationError("smetsd sent no pcap header")
            }
            output.write(header)
            var written = 0
            while count.map({ written < $0 }) ?? true {
                guard let notification = try client.nextNotification(timeout: nil) else { continue }
                guard notification.method == "capture", let text = notification.params?["record"]?.stringValue,
                      let record = Data(base64Encoded: text) else { continue }
                output.write(record)
                written += 1
            }
        }
        try? output.close()
    }
}
