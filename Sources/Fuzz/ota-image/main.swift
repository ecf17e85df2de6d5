// libFuzzer's entry point for the ota-image target; the target itself is FuzzTarget.otaImage (scripts/fuzz).
import SMETSFuzz

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    FuzzTarget.otaImage.run(start, count)
}
