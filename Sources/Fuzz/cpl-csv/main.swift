// libFuzzer's entry point for the cpl-csv target; the target itself is FuzzTarget.cplCSV (scripts/fuzz).
import SMETSFuzz

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzTarget.cplCSV.run(start, count)
}
