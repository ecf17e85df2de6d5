/// Who may call what on the control socket. Foundation: everyone local may call everything; the
/// roles of the access issue refine this.
public struct AccessPolicy: Sendable {
    public init() {}

    /// nil when `peer` may call `method`, else the sentence to refuse it with.
    public func refusal(method: String, peer: PeerCredentials?) -> String? { nil }
}
