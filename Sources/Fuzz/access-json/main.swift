// libFuzzer's entry point for the access-json target; the target itself is FuzzTarget.accessJSON (scripts/fuzz).
import SMETSFuzz

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzTarget.accessJSON.run(start, count)
}
