import Foundation
import SMETSCore

/// The `duis` object of smetsd.json: the DUIS front's listener, limits, DCC identity and where
/// asynchronous responses go. Every key optional; an unknown key is an error.
public struct DUISSettings: Sendable, Codable, Hashable {
    /// Also listen on TCP, e.g. "127.0.0.1:8079" (DCC Boxed's port); duis.sock is always served.
    public var tcp: String?
    /// Largest request body, in bytes (a 10 240 000-byte image is 13 653 336 base64 characters).
    public var maxBodyBytes = 16 << 20
    /// Deepest element nesting in a request.
    public var maxDepth = 32
    /// Most elements in a request.
    public var maxElements = 100_000
    /// Most attributes on one element.
    public var maxAttributes = 32
    /// DUIS connections at once.
    public var maxConnections = 256
    /// The DCC's EUI-64, the target of non-device requests and the originator of its answers.
    public var dccID = "90-B3-D5-1F-30-00-00-02"
    /// Where asynchronous responses are POSTed: http://host:port/path, or a Unix socket path.
    public var receiveResponseURL: String?
    /// Per originator EUI-64, a Receive Response URL that overrides the default.
    public var receiveResponseURLs: [String: String] = [:]
    /// Delivery attempts of one asynchronous response before it is dropped (and counted).
    public var deliveryAttempts = 5
    /// The first retry waits this long; each next one twice as long.
    public var deliveryBackoffMillis = 200
    /// Asynchronous responses kept for `duis.responses`, at most.
    public var keptResponses = 1000
    /// And for at most this many seconds.
    public var keptResponseSeconds = 3600
    /// "lab": unsigned or placeholder-signed requests accepted (and logged). "verify": each request's
    /// XML signature checked against its originator's key in `users` (E1), roles enforced (E2),
    /// RequestID counters increasing per originator (E1), responses signed with `signingKey`.
    public var signatures = "lab"
    /// The DUIS users (the trust store): originator EUI-64, roles, and its certificate or public key.
    public var users: [DUISUserSetting] = []
    /// The DCC's XML signing key (PEM, P-256 private key), relative to the devices folder. When set,
    /// every DUIS response is signed with it; `verify` requires it.
    public var signingKey: String?
    /// The certificate of `signingKey` (PEM), named in each response's KeyInfo by issuer and serial.
    public var signingCertificate: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case tcp, maxBodyBytes, maxDepth, maxElements, maxAttributes, maxConnections, dccID, receiveResponseURL, receiveResponseURLs
        case deliveryAttempts, deliveryBackoffMillis, keptResponses, keptResponseSeconds, signatures, users, signingKey, signingCertificate
    }

    /// Whether requests' signatures, roles and counters are checked (`signatures: "verify"`).
    public var verifies: Bool { signatures == "verify" }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let unknown = try decoder.container(keyedBy: Settings.AnyKey.self).allKeys.map(\.stringValue).filter { CodingKeys(stringValue: $0) == nil }.sorted()
        if let first = unknown.first {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + [Settings.AnyKey(first)],
                                                    debugDescription: "unknown key in duis; it is none of \(CodingKeys.allCases.map(\.rawValue).joined(separator: ", ")) (see docs/settings.md)"))
        }
        let d = DUISSettings()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tcp = try c.decodeIfPresent(String.self, forKey: .tcp)
        maxBodyBytes = try c.decodeIfPresent(Int.self, forKey: .maxBodyBytes) ?? d.maxBodyBytes
        maxDepth = try c.decodeIfPresent(Int.self, forKey: .maxDepth) ?? d.maxDepth
        maxElements = try c.decodeIfPresent(Int.self, forKey: .maxElements) ?? d.maxElements
        maxAttributes = try c.decodeIfPresent(Int.self, forKey: .maxAttributes) ?? d.maxAttributes
        maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections) ?? d.maxConnections
        dccID = try c.decodeIfPresent(String.self, forKey: .dccID) ?? d.dccID
        receiveResponseURL = try c.decodeIfPresent(String.self, forKey: .receiveResponseURL)
        receiveResponseURLs = try c.decodeIfPresent([String: String].self, forKey: .receiveResponseURLs) ?? [:]
        deliveryAttempts = try c.decodeIfPresent(Int.self, forKey: .deliveryAttempts) ?? d.deliveryAttempts
        deliveryBackoffMillis = try c.decodeIfPresent(Int.self, forKey: .deliveryBackoffMillis) ?? d.deliveryBackoffMillis
        keptResponses = try c.decodeIfPresent(Int.self, forKey: .keptResponses) ?? d.keptResponses
        keptResponseSeconds = try c.decodeIfPresent(Int.self, forKey: .keptResponseSeconds) ?? d.keptResponseSeconds
        signatures = try c.decodeIfPresent(String.self, forKey: .signatures) ?? d.signatures
        users = try c.decodeIfPresent([DUISUserSetting].self, forKey: .users) ?? []
        signingKey = try c.decodeIfPresent(String.self, forKey: .signingKey)
        signingCertificate = try c.decodeIfPresent(String.self, forKey: .signingCertificate)
    }

    public var dcc: EUI64 { EUI64(dccID) ?? EUI64(0x90B3_D51F_3000_0002) }

    /// The TCP host and port, when set.
    public var tcpAddress: (host: String, port: Int)? {
        guard let tcp, let colon = tcp.lastIndex(of: ":"), let port = Int(tcp[tcp.index(after: colon)...]) else { return nil }
        return (String(tcp[..<colon]).trimmingCharacters(in: ["[", "]"]), port)
    }

    /// The Receive Response URL for `originator`: its override, else the default.
    public func receiveURL(for originator: EUI64) -> String? {
        for (key, url) in receiveResponseURLs where EUI64(key) == originator { return url }
        return receiveResponseURL
    }

    public func problems() -> [String] {
        var found: [String] = []
        func check(_ name: String, _ value: Int, _ range: ClosedRange<Int>) {
            if !range.contains(value) { found.append("duis.\(name): \(value) is outside \(range.lowerBound)...\(range.upperBound)") }
        }
        check("maxBodyBytes", maxBodyBytes, 1024...(64 << 20))
        check("maxDepth", maxDepth, 8...256)
        check("maxElements", maxElements, 16...10_000_000)
        check("maxAttributes", maxAttributes, 4...1024)
        check("maxConnections", maxConnections, 1...10_000)
        check("deliveryAttempts", deliveryAttempts, 1...100)
        check("deliveryBackoffMillis", deliveryBackoffMillis, 1...600_000)
        check("keptResponses", keptResponses, 0...1_000_000)
        check("keptResponseSeconds", keptResponseSeconds, 1...604_800)
        if EUI64(dccID) == nil { found.append("duis.dccID: '\(dccID)' is not an EUI-64 such as 90-B3-D5-1F-30-00-00-02") }
        if tcp != nil && tcpAddress.map({ !(1...65535).contains($0.port) || $0.host.isEmpty }) ?? true {
            found.append("duis.tcp: '\(tcp ?? "")' must be host:port, such as 127.0.0.1:8079")
        }
        if signatures != "lab" && signatures != "verify" {
            found.append("duis.signatures: '\(signatures)' must be lab or verify")
        }
        if verifies && users.isEmpty {
            found.append("duis.users: verify needs at least one user (eui, roles, certificate); see docs/duis.md, \"Signatures\"")
        }
        if verifies && signingKey == nil {
            found.append("duis.signingKey: verify signs responses, so it needs the DCC's signing key (the shipped test key is keys/dcc-xml-sign-TEST-private.pem)")
        }
        if signingCertificate != nil && signingKey == nil { found.append("duis.signingCertificate: set only with duis.signingKey") }
        var seen: Set<EUI64> = []
        for (index, user) in users.enumerated() {
            let name = "duis.users[\(index)]"
            if let eui = EUI64(user.eui) {
                if !seen.insert(eui).inserted { found.append("\(name).eui: \(user.eui) is listed twice") }
            } else {
                found.append("\(name).eui: '\(user.eui)' is not an EUI-64 such as 90-B3-D5-1F-30-01-00-00")
            }
            if user.roles.isEmpty { found.append("\(name).roles: list at least one of \(DUISUserSetting.roleNames.joined(separator: ", "))") }
            for role in user.roles where !DUISUserSetting.roleNames.contains(role) {
                found.append("\(name).roles: '\(role)' is none of \(DUISUserSetting.roleNames.joined(separator: ", "))")
            }
            if user.certificate.isEmpty { found.append("\(name).certificate: name a PEM certificate or public key file") }
        }
        for (key, url) in receiveResponseURLs {
            if EUI64(key) == nil { found.append("duis.receiveResponseURLs: '\(key)' is not an EUI-64") }
            if ReceiveResponseTarget(url) == nil { found.append("duis.receiveResponseURLs: '\(url)' is neither http://host:port/path nor a Unix socket path") }
        }
        if let url = receiveResponseURL, ReceiveResponseTarget(url) == nil {
            found.append("duis.receiveResponseURL: '\(url)' is neither http://host:port/path nor a Unix socket path")
        }
        return found
    }
}

/// One DUIS user of the trust store: the originator EUI-64 of its RequestIDs (its signing
/// certificate's), its roles, and its certificate or P-256 public key (PEM, relative to the devices folder).
public struct DUISUserSetting: Sendable, Codable, Hashable {
    public var eui: String
    public var roles: [String]
    public var certificate: String

    /// duis.md §6: import/export supplier, gas supplier, electricity distributor, gas transporter,
    /// registered supplier agent, other user.
    public static let roleNames = ["IS", "ES", "GS", "ED", "GT", "RSA", "OU"]

    enum CodingKeys: String, CodingKey, CaseIterable { case eui, roles, certificate }

    public init(eui: String, roles: [String], certificate: String) { self.eui = eui; self.roles = roles; self.certificate = certificate }

    public init(from decoder: any Decoder) throws {
        let unknown = try decoder.container(keyedBy: Settings.AnyKey.self).allKeys.map(\.stringValue).filter { CodingKeys(stringValue: $0) == nil }.sorted()
        if let first = unknown.first {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + [Settings.AnyKey(first)],
                                                    debugDescription: "unknown key in a DUIS user; it is none of eui, roles, certificate (see docs/settings.md)"))
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        eui = try c.decode(String.self, forKey: .eui)
        roles = try c.decode([String].self, forKey: .roles)
        certificate = try c.decode(String.self, forKey: .certificate)
    }
}

/// The trust store and the DCC's signing key, read from the files `DUISSettings` names.
public struct DUISCredentials: Sendable, Hashable {
    public struct User: Sendable, Hashable {
        public var eui: EUI64
        public var roles: [String]
        public var key: X509Key
    }
    public var users: [EUI64: User] = [:]
    /// The DCC's private key, PEM (parsed by the daemon, which has the crypto), and its certificate.
    public var signingKeyPEM: String?
    public var signingCertificate: X509Key?

    public init() {}

    /// Reads the files under `base`; each unreadable or unusable one is a problem naming the key.
    public static func load(_ settings: DUISSettings, base: URL, problems: inout [String]) -> DUISCredentials {
        var credentials = DUISCredentials()
        func read(_ path: String, _ name: String) -> String? {
            let full = path.hasPrefix("/") ? path : base.appendingPathComponent(path).path
            guard let data = FileManager.default.contents(atPath: full), let text = String(data: data, encoding: .utf8) else {
                problems.append("\(name): cannot read \(full)")
                return nil
            }
            return text
        }
        for (index, user) in settings.users.enumerated() {
            guard let eui = EUI64(user.eui), !user.certificate.isEmpty, let pem = read(user.certificate, "duis.users[\(index)].certificate") else { continue }
            do {
                let key = try X509Key(pem: pem)
                // The identity binding (duis.md §3): an SMKI certificate names its organisation's EUI.
                if let named = key.subjectEUI, named.reduce(UInt64(0), { $0 << 8 | UInt64($1) }) != eui.rawValue {
                    problems.append("duis.users[\(index)].certificate: the certificate's x500UniqueIdentifier is not \(user.eui)")
                }
                credentials.users[eui] = User(eui: eui, roles: user.roles, key: key)
            } catch {
                problems.append("duis.users[\(index)].certificate: \(user.certificate): \(error.message)")
            }
        }
        if let path = settings.signingKey, let pem = read(path, "duis.signingKey") {
            do {
                _ = try PEM.decode(pem, labels: ["PRIVATE KEY", "EC PRIVATE KEY"])
                credentials.signingKeyPEM = pem
            } catch {
                problems.append("duis.signingKey: \(path): \(error.message)")
            }
        }
        if let path = settings.signingCertificate, let pem = read(path, "duis.signingCertificate") {
            do { credentials.signingCertificate = try X509Key(pem: pem) } catch {
                problems.append("duis.signingCertificate: \(path): \(error.message)")
            }
        }
        return credentials
    }
}

/// Where an asynchronous response is delivered.
public struct ReceiveResponseTarget: Sendable, Hashable {
    public enum Endpoint: Sendable, Hashable { case tcp(host: String, port: Int), unix(path: String) }
    public var endpoint: Endpoint
    public var path: String
    public var hostHeader: String

    /// `http://host[:port]/path`, or an absolute Unix socket path (optionally `unix:/path`).
    public init?(_ text: String) {
        if text.hasPrefix("http://") {
            let rest = text.dropFirst(7)
            let authority = rest.prefix { $0 != "/" }
            path = rest.count > authority.count ? String(rest.dropFirst(authority.count)) : "/"
            var host = String(authority), port = 80
            if let colon = authority.lastIndex(of: ":"), let number = Int(authority[authority.index(after: colon)...]) {
                host = String(authority[..<colon]); port = number
            }
            guard !host.isEmpty, (1...65535).contains(port) else { return nil }
            endpoint = .tcp(host: host, port: port)
            hostHeader = String(authority)
        } else {
            let socketPath = text.hasPrefix("unix:") ? String(text.dropFirst(5)) : text
            guard socketPath.hasPrefix("/") else { return nil }
            endpoint = .unix(path: socketPath)
            path = "/"
            hostHeader = "localhost"
        }
    }
}
