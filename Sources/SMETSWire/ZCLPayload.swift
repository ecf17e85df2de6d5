/// A ZCL command payload: what follows the ZCL header.
///
/// Decoding is total. A payload too short for its mandatory fields throws, which the daemon answers
/// with MALFORMED_COMMAND (0x80); bytes after the last field this layout knows are ignored, as the
/// ZCL asks, so that later revisions that append fields still decode.
public protocol ZCLPayload: Hashable, Sendable {
    init(decoding payload: ArraySlice<UInt8>) throws(WireError)
    func encode(into writer: inout WireWriter)
}

extension ZCLPayload {
    public init(decoding payload: [UInt8]) throws(WireError) {
        try self.init(decoding: payload[...])
    }

    /// The payload's bytes.
    public func encoded() -> [UInt8] {
        var writer = WireWriter()
        encode(into: &writer)
        return writer.bytes
    }
}

/// A command defined by one cluster, sent in one direction.
public protocol ZCLClusterCommand: ZCLPayload {
    static var clusterID: UInt16 { get }
    static var commandID: UInt8 { get }
    /// Which side sends it: server-to-client commands are received by the client side.
    static var direction: ZCLDirection { get }
}

/// A global (profile-wide) command, valid on any cluster.
public protocol ZCLGlobalCommand: ZCLPayload {
    static var commandID: UInt8 { get }
}
