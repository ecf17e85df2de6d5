#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
@testable import SystemdKit

/// Everything that reads or changes the process environment (NOTIFY_SOCKET, WATCHDOG_*,
/// LISTEN_*), one test at a time: `setenv` is not safe against concurrent `getenv`.
@Suite(.serialized)
struct EnvironmentTests {
    @Test func notifierSendsExactDatagramsToNotifySocket() throws {
        let directory = try TestSockets.makeTemporaryDirectory()
        defer { TestSockets.removeDirectory(directory, files: ["notify.sock"]) }
        let fd = try TestSockets.bindUnix(path: directory + "/notify.sock", type: Int32(SOCK_DGRAM.rawValue))
        defer { close(fd) }
        setenv("NOTIFY_SOCKET", directory + "/notify.sock", 1)
        defer { unsetenv("NOTIFY_SOCKET") }

        let notifier = SystemdNotifier()
        #expect(SystemdNotifier.isAvailable)

        #expect(notifier.ready(status: "Serving 3 devices"))
        #expect(try TestSockets.receive(from: fd) == "READY=1\nSTATUS=Serving 3 devices")

        #expect(notifier.ready())
        #expect(try TestSockets.receive(from: fd) == "READY=1")

        #expect(notifier.status("Loading lab\nfrom disk"))
        #expect(try TestSockets.receive(from: fd) == "STATUS=Loading lab from disk")

        #expect(notifier.watchdog())
        #expect(try TestSockets.receive(from: fd) == "WATCHDOG=1")

        #expect(notifier.stopping(status: "Draining"))
        #expect(try TestSockets.receive(from: fd) == "STOPPING=1\nSTATUS=Draining")

        #expect(notifier.extendTimeout(by: .seconds(5)))
        #expect(try TestSockets.receive(from: fd) == "EXTEND_TIMEOUT_USEC=5000000")

        #expect(notifier.send(["STATUS": "x", "READY": "1", "ZED": "z", "ALPHA": "a"]))
        #expect(try TestSockets.receive(from: fd) == "READY=1\nSTATUS=x\nALPHA=a\nZED=z")
    }

    @Test func reloadingCarriesMonotonicTimestamp() throws {
        let directory = try TestSockets.makeTemporaryDirectory()
        defer { TestSockets.removeDirectory(directory, files: ["notify.sock"]) }
        let fd = try TestSockets.bindUnix(path: directory + "/notify.sock", type: Int32(SOCK_DGRAM.rawValue))
        defer { close(fd) }
        setenv("NOTIFY_SOCKET", directory + "/notify.sock", 1)
        defer { unsetenv("NOTIFY_SOCKET") }

        let before = SystemdNotifier.monotonicMicroseconds()
        #expect(SystemdNotifier().reloading(status: "Reloading lab"))
        let after = SystemdNotifier.monotonicMicroseconds()

        let lines = try TestSockets.receive(from: fd).split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines.first == "RELOADING=1")
        #expect(lines.last == "STATUS=Reloading lab")
        let stamp = try #require(lines.dropFirst().first)
        #expect(stamp.hasPrefix("MONOTONIC_USEC="))
        let usec = try #require(UInt64(stamp.dropFirst("MONOTONIC_USEC=".count)))
        #expect(usec >= before && usec <= after)
    }

    @Test func notifierIsNoOpWithoutNotifySocket() {
        unsetenv("NOTIFY_SOCKET")
        #expect(!SystemdNotifier.isAvailable)
        let notifier = SystemdNotifier()
        #expect(!notifier.ready(status: "nobody listens"))
        #expect(!notifier.watchdog())
        #expect(!notifier.reloading())
        #expect(!notifier.stopping())
        #expect(!notifier.send(["STATUS": "x"]))
    }

    @Test func watchdogIntervalIsHalfOfWatchdogSec() {
        defer {
            unsetenv("WATCHDOG_USEC")
            unsetenv("WATCHDOG_PID")
        }
        unsetenv("WATCHDOG_USEC")
        unsetenv("WATCHDOG_PID")
        #expect(SystemdNotifier.watchdogInterval() == nil)

        setenv("WATCHDOG_USEC", "30000000", 1)
        setenv("WATCHDOG_PID", String(getpid()), 1)
        #expect(SystemdNotifier.watchdogInterval() == .seconds(15))

        // Meant for another process (e.g. inherited from a parent): no pings expected from us.
        setenv("WATCHDOG_PID", String(getpid() + 1), 1)
        #expect(SystemdNotifier.watchdogInterval() == nil)
    }

    @Test func noListenFDsWithoutSocketActivation() {
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_FDNAMES")
        #expect(SocketActivation.takeListenFDs().isEmpty)
    }

    @Test func listenFDsForAnotherProcessAreIgnoredAndUnset() {
        setenv("LISTEN_PID", String(getpid() + 1), 1)
        setenv("LISTEN_FDS", "2", 1)
        setenv("LISTEN_FDNAMES", "control:han", 1)
        #expect(SocketActivation.takeListenFDs().isEmpty)
        #expect(getenv("LISTEN_PID") == nil)
        #expect(getenv("LISTEN_FDS") == nil)
        #expect(getenv("LISTEN_FDNAMES") == nil)
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_FDNAMES")
    }
}
