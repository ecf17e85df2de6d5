import Logging
import SMETSCore
import SMETSRPC
import SMETSStore

/// Reads a request's params with errors that name the parameter (JSON-RPC -32602).
struct Params {
    let object: [String: JSONValue]

    init(_ value: JSONValue?) throws(JSONRPCError) {
        switch value {
        case nil, .null?: object = [:]
        case .object(let members)?: object = members
        default: throw .invalidParams("params must be an object")
        }
    }

    func string(_ key: String) throws(JSONRPCError) -> String? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let text = value.stringValue else { throw .invalidParams("\(key) must be a string") }
        return text
    }

    func requiredString(_ key: String) throws(JSONRPCError) -> String {
        guard let text = try string(key) else { throw .invalidParams("missing \(key)") }
        return text
    }

    func int(_ key: String) throws(JSONRPCError) -> Int64? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let number = value.intValue else { throw .invalidParams("\(key) must be an integer") }
        return number
    }

    func double(_ key: String) throws(JSONRPCError) -> Double? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let number = value.doubleValue else { throw .invalidParams("\(key) must be a number") }
        return number
    }

    func eui(_ key: String) throws(JSONRPCError) -> EUI64? {
        guard let text = try string(key) else { return nil }
        guard let id = EUI64(text) else { throw .invalidParams("\(key): '\(text)' is not an EUI-64; write it as 00-DB-12-34-56-78-90-A1") }
        return id
    }

    func requiredEUI(_ key: String) throws(JSONRPCError) -> EUI64 {
        guard let id = try eui(key) else { throw .invalidParams("missing \(key) (an EUI-64 such as 00-DB-12-34-56-78-90-A1)") }
        return id
    }

    func parsed<T>(_ key: String, _ what: String, _ parse: (String) -> T?) throws(JSONRPCError) -> T? {
        guard let text = try string(key) else { return nil }
        guard let value = parse(text) else { throw .invalidParams("\(key): '\(text)' is not \(what)") }
        return value
    }

    func time(_ key: String) throws(JSONRPCError) -> Timestamp? {
        try parsed(key, "an RFC 3339 time such as 2026-11-23T06:05:20Z") { Timestamp(rfc3339: $0) }
    }

    func stringList(_ key: String) throws(JSONRPCError) -> [String]? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let items = value.arrayValue?.compactMap(\.stringValue), items.count == value.arrayValue?.count else {
            throw .invalidParams("\(key) must be an array of strings")
        }
        return items
    }
}

/// A method of the control API: what it needs and what it does.
struct ControlMethod: Sendable {
    var name: String
    var run: @Sendable (Params, CallContext) throws -> JSONValue
}

/// Who is calling a method, and on which connection.
struct CallContext: Sendable {
    var connection: ControlConnection
    var role: Role
}

/// Maps JSON-RPC requests to the engine. Runs on the blocking pool.
public final class ControlRouter: Sendable {
    let engine: Engine
    let daemon: DaemonInfo
    let logger: Logger
    let access: AccessPolicy
    let uploads = FirmwareUploads()
    private let methods: [String: ControlMethod]

    public init(engine: Engine, daemon: DaemonInfo, access: AccessPolicy, logger: Logger, duis: DUISService? = nil) {
        self.engine = engine
        self.daemon = daemon
        self.access = access
        self.logger = logger
        var table: [String: ControlMethod] = [:]
        let groups = [
            Self.coreMethods(engine: engine, daemon: daemon), Self.hanMethods(engine: engine),
            Self.tenancyMethods(engine: engine), Self.firmwareMethods(engine: engine, uploads: uploads), Self.assetMethods(engine: engine),
            Self.uploadMethods(engine: engine, uploads: uploads),
            Self.faultMethods(engine: engine),
            Self.duisMethods(duis: duis),
        ]
        for method in groups.joined() { table[method.name] = method }
        methods = table
    }

    public var methodNames: [String] { methods.keys.sorted() }

    /// The response line for one request line, or nil for a client notification.
    func respond(to line: [UInt8], connection: ControlConnection) -> JSONRPCMessage? {
        switch JSONRPCMessage.parse(line: line) {
        case .failure(let error):
            return .errorResponse(error)
        case .success(.request(let id, let method, let params)):
            let result = call(method, params: params, connection: connection)
            guard let id else { return nil }
            return .response(id: id, result: result)
        case .success:
            return .errorResponse(.invalidRequest("the daemon accepts requests only"))
        }
    }

    func call(_ name: String, params: JSONValue?, connection: ControlConnection) -> Result<JSONValue, JSONRPCError> {
        guard let method = methods[name] else { return .failure(.methodNotFound(name)) }
        let role = access.role(for: connection.peer)
        if let refusal = access.refusal(method: name, role: role) {
            logger.warning("refused a control call", metadata: [
                "event": "access.refused", "method": .string(name), "role": .string(role.description),
                "caller_uid": .string(connection.peer.map { String($0.uid) } ?? "unknown"),
                "caller_pid": .string(connection.peer.map { String($0.pid) } ?? "unknown"),
            ])
            return .failure(.application(.notAuthorised, message: refusal, extra: ["role": .string(role.description), "method": .string(name)]))
        }
        do {
            return .success(try method.run(try Params(params), CallContext(connection: connection, role: role)))
        } catch let error as JSONRPCError {
            return .failure(error)
        } catch let error as DomainError {
            return .failure(Self.rpcError(error))
        } catch {
            if let fault = StorageFault(error) {
                // The disk, not the request: nothing was committed, so the caller may simply retry later.
                logger.notice("a control call could not be stored", metadata: [
                    "event": "control.storageUnavailable", "method": .string(name), "fault": .string(fault.rawValue), "error": .string("\(error)"),
                ])
                return .failure(.application(.storageUnavailable, message: "\(fault.explanation): nothing was changed; reads still work, and writes resume by themselves when it recovers",
                                             extra: ["fault": .string(fault.rawValue)]))
            }
            logger.error("a control call failed", metadata: ["event": "control.failed", "method": .string(name), "error": .string("\(error)")])
            return .failure(.internalError("\(error)"))
        }
    }

    static func rpcError(_ error: DomainError) -> JSONRPCError {
        let code = ApplicationErrorCode(reason: error.reason)?.rawValue ?? 1008
        return .application(code: code, reason: error.reason, message: error.message)
    }

    func disconnected(_ connection: ControlConnection) {
        if let id = connection.subscription.withLock({ $0 }) { engine.events.unsubscribe(id) }
        uploads.discardAll(owner: ObjectIdentifier(connection))
    }
}

/// What `daemon.status` says about the process itself.
public final class DaemonInfo: Sendable {
    public let version = "0.1.0"
    public let pid: Int32
    public let statePath: String
    public let runtimeDirectory: String
    let counter: ConnectionCounter
    let stateName = Mutex<String>("starting")

    init(pid: Int32, statePath: String, runtimeDirectory: String, counter: ConnectionCounter) {
        self.pid = pid; self.statePath = statePath; self.runtimeDirectory = runtimeDirectory; self.counter = counter
    }

    public var state: String {
        get { stateName.withLock { $0 } }
    }
    func setState(_ value: String) { stateName.withLock { $0 = value } }
}

import Synchronization

extension ControlRouter {
    static func deviceJSON(_ device: Device, engine: Engine) -> JSONValue {
        let model = engine.model(for: device)
        var object: [String: JSONValue] = [
            "id": .string(device.id.description), "type": .string(device.type.name), "premises": .string(device.premisesID),
            "model": .string(device.modelKey), "owner": .string(device.owner), "preNotified": .string(device.preNotified.rawValue),
            "mode": .string(device.mode.name), "status": .string(device.status.rawValue),
            "hub": device.hub.map { .string($0.description) } ?? .null,
            "firmwareVersion": .string(device.firmwareVersion.hex),
            "presentedFirmwareVersion": .string(engine.presentedFirmware(of: device).hex),
            "region": .string(device.region.rawValue),
            "smetsVersion": device.smetsVersion.map { .string($0.rawValue) } ?? .null,
        ]
        if let model {
            object["manufacturer"] = .string(model.manufacturer.name)
            object["manufacturerCode"] = .string(model.manufacturer.code)
            object["modelId"] = .string(model.modelId)
            object["modelName"] = .string(model.modelName)
            object["hardwareVersion"] = .int(Int64(model.hardwareVersion))
        }
        return .object(object)
    }

    /// `{"writable":true}`, or the fault that stops writes and since when.
    static func storageJSON(_ degraded: StoreHealth.Degraded?) -> JSONValue {
        guard let degraded else { return ["writable": true] }
        return ["writable": false, "fault": .string(degraded.fault.rawValue), "detail": .string(degraded.detail),
                "since": .string(Timestamp(unixMillis: Int64(degraded.since.timeIntervalSince1970 * 1000)).rfc3339)]
    }

    static func coreMethods(engine: Engine, daemon: DaemonInfo) -> [ControlMethod] {
        [
            ControlMethod(name: "daemon.status") { _, _ in
                let counts = engine.counts
                let connections = daemon.counter.current
                return [
                    "state": .string(daemon.state), "ready": .bool(daemon.state == "ready"), "version": .string(daemon.version),
                    "pid": .int(Int64(daemon.pid)), "startedAt": .string(engine.startedAt.rfc3339),
                    "devices": .int(Int64(counts.devices)), "premises": .int(Int64(counts.premises)),
                    "connections": ["control": .int(Int64(connections.control)), "han": .int(Int64(connections.han))],
                    "clock": .string(engine.now().rfc3339), "lab": .string(engine.lab.directory),
                    "stateFile": .string(daemon.statePath), "runtimeDirectory": .string(daemon.runtimeDirectory),
                    "regime": .string(engine.lab.regime.rawValue),
                    "storage": storageJSON(engine.store.health.degraded),
                ]
            },
            ControlMethod(name: "devices.list") { params, _ in
                var filter = Engine.DeviceFilter()
                filter.type = try params.parsed("type", "a device type (GSME, ESME, CHF, GPF, HCALCS, PPMID, IHD)") { DeviceType(name: $0) }
                filter.premises = try params.string("premises")
                filter.status = try params.parsed("status", "an inventory status") { InventoryStatus(text: $0) }
                filter.mode = try params.parsed("mode", "a SMETS mode (SMETS1, SMETS2+, undetermined)") {
                    $0 == "undetermined" ? .undetermined : SMETSVersion(text: $0).map(SMETSMode.init)
                }
                filter.model = try params.string("model")
                filter.hub = try params.eui("hub")
                let limit = try params.int("limit") ?? 100
                guard (1...1000).contains(limit) else { throw JSONRPCError.invalidParams("limit must be 1...1000") }
                let cursor = try params.eui("cursor")
                let page = engine.list(filter, after: cursor, limit: Int(limit))
                return [
                    "devices": .array(page.devices.map { deviceJSON($0, engine: engine) }),
                    "nextCursor": page.next.map { .string($0.description) } ?? .null,
                    "total": .int(Int64(page.total)),
                ]
            },
            ControlMethod(name: "devices.get") { params, _ in
                let device = try engine.requireDevice(try params.requiredEUI("id"))
                var json = deviceJSON(device, engine: engine)
                let counts = try engine.dataCounts(device.id)
                if case .object(var object) = json {
                    object["data"] = [
                        "consumptionDays": .int(Int64(counts.consumptionDays)), "messages": .int(Int64(counts.messages)),
                        "topUps": .int(Int64(counts.topUps)), "debtRecords": .int(Int64(counts.debtRecords)),
                        "consumerSettings": .int(Int64(counts.consumerSettings)),
                    ]
                    // What the premises' meter holds of its supplier (supplier.change, DUIS 3.4).
                    let contact = try engine.supplierContact(premises: device.premisesID)
                    object["supplier"] = [
                        "provider": .string(upperHex(try engine.supplierProvider(premises: device.premisesID), width: 8)),
                        "name": contact.name.map { .string($0) } ?? .null, "telephone": contact.telephone.map { .string($0) } ?? .null,
                    ]
                    json = .object(object)
                }
                return json
            },
            ControlMethod(name: "devices.create") { params, _ in
                guard let type = try params.parsed("type", "a device type", { DeviceType(name: $0) }) else {
                    throw JSONRPCError.invalidParams("missing type")
                }
                let request = Engine.NewDevice(
                    id: try params.eui("id"), type: type, premises: try params.requiredString("premises"),
                    model: try params.requiredString("model"), owner: try params.string("owner"),
                    preNotified: try params.parsed("preNotified", "SMETS1 or SMETS2+") { SMETSVersion(text: $0) },
                    status: try params.parsed("status", "an inventory status") { InventoryStatus(text: $0) },
                    smetsVersion: nil)
                return deviceJSON(try engine.create(request), engine: engine)
            },
            ControlMethod(name: "devices.remove") { params, _ in
                let id = try params.requiredEUI("id")
                try engine.remove(id)
                return ["removed": .string(id.description)]
            },
            ControlMethod(name: "han.join") { params, _ in
                let result = try engine.join(try params.requiredEUI("device"), hub: try params.requiredEUI("hub"))
                return [
                    "device": deviceJSON(result.device, engine: engine), "mode": .string(result.device.mode.name),
                    "transitions": .array(result.transitions.map { .string($0.rawValue) }),
                ]
            },
            ControlMethod(name: "inventory.correct") { params, _ in
                let result = try engine.correctInventory(try params.requiredEUI("device"))
                return [
                    "device": deviceJSON(result.device, engine: engine), "smetsVersion": .string(result.device.preNotified.rawValue),
                    "transitions": .array(result.transitions.map { .string($0.rawValue) }),
                ]
            },
            ControlMethod(name: "han.leave") { params, _ in
                ["device": deviceJSON(try engine.leave(try params.requiredEUI("device")), engine: engine)]
            },
            ControlMethod(name: "clock.get") { _, _ in engine.clockReading().json },
            ControlMethod(name: "clock.set") { params, _ in
                guard let time = try params.time("time") else { throw JSONRPCError.invalidParams("missing time (RFC 3339)") }
                return try engine.setClock(to: time).json
            },
            ControlMethod(name: "clock.advance") { params, _ in
                var millis: Double = 0
                var given = false
                for (key, scale) in [("seconds", 1_000.0), ("minutes", 60_000), ("hours", 3_600_000), ("days", 86_400_000)] {
                    if let value = try params.double(key) { millis += value * scale; given = true }
                }
                guard given else { throw JSONRPCError.invalidParams("give seconds, minutes, hours or days") }
                guard millis.isFinite, abs(millis) < 1e15 else { throw DomainError(.clockInvalid, "the advance is too large") }
                return try engine.advanceClock(byMillis: Int64(millis)).json
            },
            ControlMethod(name: "events.subscribe") { params, call in
                let connection = call.connection
                let types = try params.stringList("types").map(Set.init)
                // A misspelt type would subscribe to nothing, silently: name it instead.
                let unknown = (types ?? []).subtracting(EventType.allCases.map(\.rawValue)).sorted()
                guard unknown.isEmpty else {
                    throw JSONRPCError.invalidParams("unknown event types \(unknown.joined(separator: ", ")); known: \(EventType.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                connection.subscription.withLock { current in
                    if let current { engine.events.unsubscribe(current) }
                    current = engine.events.subscribe(types: types) { event in
                        connection.push(.notification(method: "event", params: event.json))
                    }
                }
                return ["subscribed": true]
            },
            ControlMethod(name: "events.unsubscribe") { _, call in
                let connection = call.connection
                connection.subscription.withLock { current in
                    if let current { engine.events.unsubscribe(current) }
                    current = nil
                }
                return ["subscribed": false]
            },
            ControlMethod(name: "lab.generate") { params, _ in
                guard let count = try params.int("premises") else { throw JSONRPCError.invalidParams("missing premises (how many to add)") }
                let result = try engine.generate(premises: Int(clamping: count))
                return ["premises": .int(Int64(result.premises)), "devices": .int(Int64(result.devices))]
            },
        ]
    }
}
