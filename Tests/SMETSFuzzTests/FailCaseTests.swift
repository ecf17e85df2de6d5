import Foundation
import SMETSFuzz
import Testing

/// Replays what the fuzzers found, the swift-nio way: every minimised crasher under
/// `Tests/fuzz/failcases/<target>/` and every seed under `Tests/fuzz/<target>/corpus/` goes through
/// the target's own check, so a parser defect that was fixed stays fixed without a sanitizer build.
/// A trap fails the whole test run; a broken property fails the case with the file's name.
@Suite("Fuzz fail cases and seeds")
struct FailCaseTests {
    static let fuzzFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz")

    static func files(in folder: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { folder.appendingPathComponent($0) }
    }

    @Test("every fail case and seed passes its target's check", arguments: FuzzTarget.all.map(\.name))
    func replay(target name: String) throws {
        let target = try #require(FuzzTarget.named(name))
        let failCases = Self.files(in: Self.fuzzFolder.appendingPathComponent("failcases/\(name)"))
        let seeds = Self.files(in: Self.fuzzFolder.appendingPathComponent("\(name)/corpus"))
        #expect(!seeds.isEmpty, "\(name) has no seed corpus")
        for file in failCases + seeds {
            let bytes = try [UInt8](Data(contentsOf: file))
            let failure = target.check(bytes)
            #expect(failure == nil, "\(file.lastPathComponent): \(failure ?? "")")
        }
    }

    @Test("every target has a libFuzzer entry point, a dictionary and a seed folder, and nothing else does")
    func layout() throws {
        let sources = Self.fuzzFolder.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Sources/Fuzz")
        let entryPoints = Self.files(in: sources).map(\.lastPathComponent)
        #expect(entryPoints == FuzzTarget.all.map(\.name).sorted())
        for target in FuzzTarget.all {
            let dictionary = Self.fuzzFolder.appendingPathComponent("\(target.name)/dict")
            #expect(FileManager.default.fileExists(atPath: dictionary.path), "\(target.name) has no dictionary")
            let main = try String(contentsOf: sources.appendingPathComponent("\(target.name)/main.swift"), encoding: .utf8)
            #expect(main.contains("LLVMFuzzerTestOneInput"))
        }
    }
}
