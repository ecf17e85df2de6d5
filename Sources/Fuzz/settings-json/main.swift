// libFuzzer's entry point for the settings-json target; the target itself is FuzzTarget.settingsJSON (scripts/fuzz).
import SMETSFuzz

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzTarget.settingsJSON.run(start, count)
}
