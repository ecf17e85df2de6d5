import ArgumentParser
import Logging
import SMETSDaemon
import SystemdKit

/// `smetsd`: the emulator daemon.
struct SMETSDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smetsd",
        abstract: "Emulates GB smart metering devices (PPMIDs, IHDs, meters, Communications Hubs) over Unix sockets.",
        discussion: """
            smetsd loads the device models, the lab and the Central Products List from a devices folder, keeps \
            the emulated system's state in an SQLite file, and serves:
              control.sock   the JSON-RPC control API (smetsctl talks to it)
              han.sock       the HAN link: ZCL frames to any device (see docs/han-link.md)
              devices/ID.sock  a HAN socket per lab device

            Folders: --state (else $STATE_DIRECTORY, else DEVICES/.state) and --runtime (else \
            $RUNTIME_DIRECTORY, else DEVICES/.run). Under systemd it is Type=notify, takes its sockets by \
            socket activation, pings the watchdog, reloads the devices folder on SIGHUP and logs to the journal.

            Examples:
              smetsd --lab devices                 run on the shipped lab, logs on stderr
              smetsd --lab devices --state /tmp/s  keep the state elsewhere
            """)

    @Option(name: .long, help: "The devices folder: models/, lab.json, cpl.csv, optional smetsd.json.")
    var lab: String = "devices"

    @Option(name: .long, help: "Folder for the state file (default: $STATE_DIRECTORY, else LAB/.state).")
    var state: String?

    @Option(name: .long, help: "Folder for the sockets (default: $RUNTIME_DIRECTORY, else LAB/.run).")
    var runtime: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Where logs go: auto (journal under systemd, else stderr), journal, text, json.")
    var logFormat: String = "auto"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown log level '\(logLevel)'") }
        guard ["auto", "journal", "text", "json"].contains(logFormat) else { throw ValidationError("unknown log format '\(logFormat)'") }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        switch logFormat {
        case "journal": SystemdLogging.bootstrap(label: "smetsd", level: level, preferJournal: true)
        case "text": SystemdLogging.bootstrap(label: "smetsd", level: level, preferJournal: false, format: .text)
        case "json": SystemdLogging.bootstrap(label: "smetsd", level: level, preferJournal: false, format: .json)
        default: SystemdLogging.bootstrap(label: "smetsd", level: level)
        }
        let daemon = Daemon(options: DaemonOptions(labDirectory: lab, stateDirectory: state, runtimeDirectory: runtime),
                            logger: Logger(label: "smetsd"))
        let status = daemon.run()
        if status != 0 { throw ExitCode(status) }
    }
}

SMETSDCommand.main()
