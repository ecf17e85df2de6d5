import Testing
@testable import SMETSDevices

@Suite("SMETSDevices")
struct SMETSDevicesModuleTests {
    @Test("the module builds on the domain and the wire layer alone")
    func namespaceExists() {
        #expect(String(describing: SMETSDevices.self) == "SMETSDevices")
    }
}
