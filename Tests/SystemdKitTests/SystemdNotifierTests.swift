import Testing
@testable import SystemdKit

struct SystemdNotifierTests {
    @Test func stateChangesComeFirstThenTheRestSorted() {
        #expect(SystemdNotifier.message(["STATUS": "Ready", "READY": "1"]) == "READY=1\nSTATUS=Ready")
        #expect(SystemdNotifier.message(["MONOTONIC_USEC": "5", "RELOADING": "1"]) == "RELOADING=1\nMONOTONIC_USEC=5")
        #expect(SystemdNotifier.message(["X_B": "2", "ERRNO": "5", "X_A": "1", "STOPPING": "1"])
            == "STOPPING=1\nERRNO=5\nX_A=1\nX_B=2")
        #expect(SystemdNotifier.message([:]) == "")
    }

    @Test func newlinesInValuesCannotStartAnotherAssignment() {
        #expect(SystemdNotifier.message(["STATUS": "a\nREADY=1\r\nb"]) == "STATUS=a READY=1 b")
    }

    @Test func durationsInMicroseconds() {
        #expect(SystemdNotifier.microseconds(of: .seconds(30)) == 30_000_000)
        #expect(SystemdNotifier.microseconds(of: .milliseconds(1500)) == 1_500_000)
        #expect(SystemdNotifier.microseconds(of: .seconds(-1)) == 0)
    }
}
