import ArgumentParser
import SMETSCore
import SMETSRPC

struct HANSend: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send a ZCL frame from one emulated device to another.",
        discussion: """
            The frame (ZCL header and payload, in hex) goes from --from to --to on --cluster, as if \
            over the HAN; the receiving device answers as it would over the HAN link, and its answers \
            come back the same way. A frame to a device that is not emulated goes out to the rigs \
            attached to the sender. Prints the sender's last frames, as han trace does.

            Examples:
              # The ESME sends a DisplayMessage "Hello" to the PPMID (Messaging, 0703)
              smetsctl han send --cluster 0703 \\
                  --from 00-DB-12-34-56-78-00-02 --to 00-DB-12-34-56-78-00-05 \\
                  --zcl 19010000010000002000000000FFFF0548656C6C6F
              # The PPMID reads the ESME's Basic cluster attribute 0x0000 (ZCL version)
              smetsctl han send --cluster 0000 \\
                  --from 00-DB-12-34-56-78-00-05 --to 00-DB-12-34-56-78-00-02 \\
                  --zcl "00 2A 00 00 00"

            Refusals (exit 1): device_not_found; -32602 when smetsd cannot decode the frame.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The sending device.", valueName: "device-id"), transform: ArgumentValues.deviceID)
    var from: EUI64

    @Option(help: ArgumentHelp("The receiving device.", valueName: "device-id"), transform: ArgumentValues.deviceID)
    var to: EUI64

    @Option(help: ArgumentHelp("The ZCL cluster, 4 hex digits, e.g. 0703 (Messaging), 0705 (Prepayment).", valueName: "hex4"),
            transform: ArgumentValues.cluster)
    var cluster: String

    @Option(help: ArgumentHelp("The ZCL frame, header and payload, in hex (spaces allowed between bytes).", valueName: "hex"),
            transform: ArgumentValues.zclHex)
    var zcl: String

    func run() throws {
        let params: JSONValue = ["from": .string(from.description), "to": .string(to.description), "cluster": .string(cluster), "zcl": .string(zcl)]
        let result = try global.session { try $0.call("han.send", params: params) }
        global.output(result) { result in
            let frames = result["trace"]?.arrayValue ?? []
            var text = "sent \(zcl.count / 2) bytes on cluster \(cluster) from \(from) to \(to)\n"
            if !frames.isEmpty { text += "\nlast frames of \(from):\n" + HANTrace.table(frames) }
            return text
        }
    }
}
