// libFuzzer's entry point for the lab-json target; the target itself is FuzzTarget.labJSON (scripts/fuzz).
import SMETSFuzz

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzTarget.labJSON.run(start, count)
}
