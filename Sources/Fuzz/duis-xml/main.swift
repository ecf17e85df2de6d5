// libFuzzer's entry point for the duis-xml target; the target itself is FuzzTarget.duisXML (scripts/fuzz).
import SMETSFuzz

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzTarget.duisXML.run(start, count)
}
