// libFuzzer's entry point for the zcl target; the target itself is FuzzTarget.zcl (scripts/fuzz).
import SMETSFuzz

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzTarget.zcl.run(start, count)
}
