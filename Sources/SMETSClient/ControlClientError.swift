import SMETSRPC

/// Why a ``ControlClient`` call failed.
public enum ControlClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Nothing listens on the socket (it is missing, or nobody accepts on it).
    case daemonNotRunning(path: String, detail: String)
    /// A system call failed, or the daemon closed the connection.
    case io(String)
    /// The daemon sent something that is not a JSON-RPC 2.0 line.
    case protocolError(String)
    /// No answer within the client's timeout.
    case timeout
    /// The daemon answered with an error.
    case remote(JSONRPCError)

    public var description: String {
        switch self {
        case .daemonNotRunning(let path, let detail):
            """
            smetsd is not running: cannot connect to \(path) (\(detail)).
            Start it with `swift run smetsd` in the smetsd package, or `systemctl start smetsd.socket`; \
            or point --socket or $SMETSD_SOCKET at the control.sock it listens on.
            """
        case .io(let detail): "I/O error: \(detail)"
        case .protocolError(let detail): "protocol error: \(detail)"
        case .timeout: "timed out waiting for smetsd"
        case .remote(let error): error.description
        }
    }
}
