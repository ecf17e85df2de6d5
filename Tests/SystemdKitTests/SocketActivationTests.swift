#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
@testable import SystemdKit

struct SocketActivationTests {
    @Test func parsesNamesForEachDescriptor() {
        #expect(SocketActivation.parseFDNames("control:han", count: 2) == ["control", "han"])
        #expect(SocketActivation.parseFDNames("smetsd.socket:smetsd.socket", count: 2)
            == ["smetsd.socket", "smetsd.socket"])
    }

    @Test func missingOrShortNamesBecomeUnknown() {
        #expect(SocketActivation.parseFDNames(nil, count: 2) == ["unknown", "unknown"])
        #expect(SocketActivation.parseFDNames("control", count: 2) == ["control", "unknown"])
        #expect(SocketActivation.parseFDNames("control::han", count: 3) == ["control", "unknown", "han"])
        #expect(SocketActivation.parseFDNames("", count: 1) == ["unknown"])
    }

    @Test func surplusNamesAreDroppedAndZeroCountIsEmpty() {
        #expect(SocketActivation.parseFDNames("a:b:c", count: 2) == ["a", "b"])
        #expect(SocketActivation.parseFDNames("a", count: 0).isEmpty)
    }

    @Test func readsBoundPathOfUnixSockets() throws {
        let directory = try TestSockets.makeTemporaryDirectory()
        defer { TestSockets.removeDirectory(directory, files: ["control.sock", "han.sock"]) }
        let control = try TestSockets.bindUnix(path: directory + "/control.sock", type: Int32(SOCK_STREAM.rawValue))
        defer { close(control) }
        let han = try TestSockets.bindUnix(path: directory + "/han.sock", type: Int32(SOCK_STREAM.rawValue))
        defer { close(han) }

        #expect(SocketActivation.boundPath(of: control) == directory + "/control.sock")
        let sockets = [
            ActivatedSocket(fd: control, name: "smetsd", path: SocketActivation.boundPath(of: control)),
            ActivatedSocket(fd: han, name: "smetsd", path: SocketActivation.boundPath(of: han)),
        ]
        #expect(sockets[0].pathBasename == "control.sock")
        #expect(SocketActivation.socket(for: "control", in: sockets)?.fd == control)
        #expect(SocketActivation.socket(for: "han", in: sockets)?.fd == han)
        #expect(SocketActivation.socket(for: "han.sock", in: sockets)?.fd == han)
        #expect(SocketActivation.socket(for: "other", in: sockets) == nil)
    }

    @Test func describesConsecutiveDescriptors() throws {
        let directory = try TestSockets.makeTemporaryDirectory()
        defer { TestSockets.removeDirectory(directory, files: ["control.sock"]) }
        let fd = try TestSockets.bindUnix(path: directory + "/control.sock", type: Int32(SOCK_STREAM.rawValue))
        defer { close(fd) }
        let described = SocketActivation.sockets(names: ["control"], startingAt: fd)
        #expect(described == [ActivatedSocket(fd: fd, name: "control", path: directory + "/control.sock")])
    }

    @Test func nameBeatsPathWhenMatching() {
        // An fd explicitly named "han" wins over one whose file happens to be han.sock.
        let byPath = ActivatedSocket(fd: 3, name: "smetsd.socket", path: "/run/smetsd/han.sock")
        let byName = ActivatedSocket(fd: 4, name: "han", path: "/elsewhere/link.sock")
        #expect(SocketActivation.socket(for: "han", in: [byPath, byName])?.fd == 4)
        #expect(byPath.matches("han"))
        #expect(!byPath.matches("control"))
    }

    @Test func abstractAndUnboundSockets() throws {
        let name = "\0sdkit-test-\(getpid())"
        let abstract = try TestSockets.bindUnix(path: Array(name.utf8), type: Int32(SOCK_STREAM.rawValue))
        defer { close(abstract) }
        #expect(SocketActivation.boundPath(of: abstract) == "@sdkit-test-\(getpid())")
        #expect(ActivatedSocket(fd: abstract, name: "x", path: "@sdkit").pathBasename == nil)

        let unbound = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(unbound) }
        #expect(SocketActivation.boundPath(of: unbound) == nil)

        var pipeEnds: [Int32] = [0, 0]
        #expect(pipe(&pipeEnds) == 0)
        defer { close(pipeEnds[0]); close(pipeEnds[1]) }
        #expect(SocketActivation.boundPath(of: pipeEnds[0]) == nil)
    }
}
