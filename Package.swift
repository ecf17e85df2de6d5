// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "smetsd",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "smetsd", targets: ["smetsd"]),
        .executable(name: "smetsctl", targets: ["smetsctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        // The domain: devices, identity, CPL, MP202, tenancy and firmware rules. No I/O.
        .target(name: "SMETSCore", swiftSettings: strict),
        // Bytes in and out: HAN link frames, ZCL, OTA images. Total parsers, no I/O.
        .target(name: "SMETSWire", dependencies: ["SMETSCore"], swiftSettings: strict),
        // What the hardware does: one value-type state machine per behaviour (HAN link, OTA client and
        // server, prepayment, messaging and display data, tenancy), input in -> actions out. No I/O.
        .target(name: "SMETSDevices", dependencies: ["SMETSCore", "SMETSWire"], swiftSettings: strict),
        // What the DCC decides: the Smart Metering Inventory's view, the CPL under a regime, MP202
        // Requirement 7, service-request eligibility. No device internals, no I/O.
        .target(name: "SMETSDCC", dependencies: ["SMETSCore"], swiftSettings: strict),
        // The devices folder read and validated: models, lab.json, cpl.csv, smetsd.json (Settings),
        // access.json. Foundation only, so the fuzz build needs none of the server's packages.
        .target(name: "SMETSConfig", dependencies: ["SMETSCore"], swiftSettings: strict),
        // The properties the libFuzzer targets check (scripts/fuzz), shared with the test that replays
        // their fail cases and seeds.
        .target(name: "SMETSFuzz", dependencies: ["SMETSCore", "SMETSWire", "SMETSDevices", "SMETSRPC", "SMETSConfig", "SMETSDUIS"],
                swiftSettings: strict),
        // The DUIS front of the emulated DCC: a hardened XML reader, requests, responses, the order of
        // checks and the GBCS messages of the subset. No I/O.
        .target(name: "SMETSDUIS", dependencies: [
            "SMETSCore", .product(name: "Crypto", package: "swift-crypto"),
        ], swiftSettings: strict),
        // Durable state in SQLite through GRDB.
        .target(name: "SMETSStore", dependencies: [
            "SMETSCore",
            .product(name: "GRDB", package: "GRDB.swift"),
        ], swiftSettings: strict),
        // libsystemd, as a system library.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // glibc's <malloc.h>: heap statistics and malloc_trim, for giving freed memory back.
        .systemLibrary(name: "CMalloc"),
        // The Swift face of libsystemd: notify, socket activation, watchdog, journald logging.
        .target(name: "SystemdKit", dependencies: [
            "CSystemd",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        // JSON-RPC 2.0 messages and a JSON value type, shared by the control server and its clients.
        .target(name: "SMETSRPC", swiftSettings: strict),
        // A blocking JSON-RPC client of the control socket, shared by smetsctl and the tests.
        .target(name: "SMETSClient", dependencies: ["SMETSRPC"], swiftSettings: strict),
        // The running system: device runtimes, HAN and control servers, scheduler, access control.
        .target(name: "SMETSDaemon", dependencies: [
            "SMETSCore", "SMETSWire", "SMETSDevices", "SMETSDCC", "SMETSDUIS", "SMETSRPC", "SMETSConfig", "SMETSStore", "SystemdKit", "CMalloc",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "HashTreeCollections", package: "swift-collections"),
        ], swiftSettings: strict),
        .executableTarget(name: "smetsd", dependencies: [
            "SMETSDaemon", "SystemdKit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        .executableTarget(name: "smetsctl", dependencies: [
            "SMETSCore", "SMETSWire", "SMETSDCC", "SMETSRPC", "SMETSClient",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Crypto", package: "swift-crypto"),
        ], swiftSettings: strict),
        // The benchmarks behind docs/benchmarks.md.
        .executableTarget(name: "smetsbench", dependencies: ["SMETSCore", "SMETSWire"], swiftSettings: strict),
        .testTarget(name: "SMETSCoreTests", dependencies: ["SMETSCore", "SMETSDCC"], swiftSettings: strict),
        .testTarget(name: "SMETSWireTests", dependencies: ["SMETSWire"], swiftSettings: strict),
        .testTarget(name: "SMETSDevicesTests", dependencies: ["SMETSDevices", "SMETSCore", "SMETSWire"], swiftSettings: strict),
        .testTarget(name: "SMETSDCCTests", dependencies: ["SMETSDCC", "SMETSCore"], swiftSettings: strict),
        .testTarget(name: "SMETSStoreTests", dependencies: ["SMETSStore", .product(name: "GRDB", package: "GRDB.swift")], swiftSettings: strict),
        .testTarget(name: "SystemdKitTests", dependencies: ["SystemdKit"], swiftSettings: strict),
        .testTarget(name: "SMETSDaemonTests", dependencies: [
            "SMETSDaemon", "SMETSConfig", "SMETSCore", "SMETSStore",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),
        .testTarget(name: "SMETSFuzzTests", dependencies: ["SMETSFuzz"], swiftSettings: strict),
        .testTarget(name: "SMETSDUISTests", dependencies: ["SMETSDUIS", "SMETSCore", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),
        .testTarget(name: "SMETSRPCTests", dependencies: ["SMETSRPC"], swiftSettings: strict),
        .testTarget(name: "IntegrationTests", dependencies: ["SMETSClient", "SMETSRPC", "SMETSWire", "SMETSCore", .product(name: "Crypto", package: "swift-crypto")],
                    swiftSettings: strict),
    ]
)

// `scripts/fuzz` evaluates this manifest with SMETSD_FUZZ=1, in a scratch path of its own and with
// --sanitize=fuzzer --sanitize=address: the package is then only the modules the fuzz targets reach
// (no outside packages to resolve or build) plus one libFuzzer executable per target (its
// `LLVMFuzzerTestOneInput` in Sources/Fuzz/<target>/main.swift). A normal build never sees them.
if Context.environment["SMETSD_FUZZ"] != nil {
    let reached: Set<String> = ["SMETSCore", "SMETSWire", "SMETSDevices", "SMETSRPC", "SMETSConfig", "SMETSFuzz"]
    let fuzzTargets = ["han-stream", "zcl", "ota-image", "json", "jsonrpc", "lab-json", "model-json", "cpl-csv",
                       "settings-json", "access-json", "duis-xml", "han-link-sequence", "control-lines"]
    // The DUIS reader, canonicaliser and request parser without swift-crypto: GBCS, XMLSignature and
    // DUISTrust (not fuzzed here) need it.
    let duisRequestSide = Target.target(name: "SMETSDUIS", dependencies: ["SMETSCore"],
                                        exclude: ["DUISResponse.swift", "GBCS.swift", "DUISTrust.swift", "XMLSignature.swift"],
                                        sources: ["XMLReader.swift", "XMLCanonical.swift", "DUISParser.swift", "DUISRequest.swift", "DUISCatalog.swift", "UTRN.swift"],
                                        swiftSettings: strict)
    package.dependencies = []
    package.products = fuzzTargets.map { .executable(name: "fuzz-\($0)", targets: ["fuzz-\($0)"]) }
    package.targets = package.targets.filter { reached.contains($0.name) } + [duisRequestSide] + fuzzTargets.map { name in
        .executableTarget(name: "fuzz-\(name)", dependencies: ["SMETSFuzz"], path: "Sources/Fuzz/\(name)", swiftSettings: strict)
    }
}
