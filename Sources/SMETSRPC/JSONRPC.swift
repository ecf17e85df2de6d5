/// A JSON-RPC 2.0 request id: a string or an integer.
///
/// JSON-RPC also permits `null` and fractional numbers; this API refuses both in requests, and a
/// response whose id could not be determined carries `null`, modelled as a nil ``JSONRPCID``.
public enum JSONRPCID: Sendable, Hashable, CustomStringConvertible {
    case number(Int64)
    case string(String)

    /// The id as it travels.
    public var json: JSONValue {
        switch self {
        case .number(let value): .int(value)
        case .string(let value): .string(value)
        }
    }

    /// The id `value` holds: an integer or a string (a fractional or too large number is none).
    public init?(json value: JSONValue) {
        switch value {
        case .int(let number): self = .number(number)
        case .string(let text): self = .string(text)
        default: return nil
        }
    }

    public var description: String { json.serialized() }
}

extension JSONRPCID: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
    public init(integerLiteral value: Int64) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
}

/// A JSON-RPC 2.0 error object: `{"code": …, "message": …, "data": …}`.
///
/// Protocol errors use the JSON-RPC codes (-32700 … -32603); application errors use the
/// ``ApplicationErrorCode`` numbers and carry their stable reason in `data.reason`. Every error
/// made by the constructors here carries a `data.reason`, so a client can always switch on it.
public struct JSONRPCError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    /// A sentence for people.
    public var message: String
    public var data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    /// `data.reason`, the stable snake_case name of the error, when there is one.
    public var reason: String? { data?["reason"]?.stringValue }

    /// The application error code, when ``code`` is one.
    public var applicationCode: ApplicationErrorCode? { ApplicationErrorCode(rawValue: code) }

    /// `message (reason, code N)`, the form the CLI shows.
    public var description: String {
        if let reason { return "\(message) (\(reason), code \(code))" }
        return "\(message) (code \(code))"
    }

    // MARK: Protocol errors

    public static let parseErrorCode = -32700
    public static let invalidRequestCode = -32600
    public static let methodNotFoundCode = -32601
    public static let invalidParamsCode = -32602
    public static let internalErrorCode = -32603

    /// -32700: the line is not JSON.
    public static func parseError(_ detail: String) -> JSONRPCError {
        JSONRPCError(code: parseErrorCode, message: "parse error: \(detail)", data: ["reason": "parse_error"])
    }

    /// -32600: JSON, but not a valid request object.
    public static func invalidRequest(_ detail: String) -> JSONRPCError {
        JSONRPCError(code: invalidRequestCode, message: "invalid request: \(detail)", data: ["reason": "invalid_request"])
    }

    /// -32601: no method of that name.
    public static func methodNotFound(_ method: String) -> JSONRPCError {
        JSONRPCError(
            code: methodNotFoundCode, message: "method not found: \(method)",
            data: ["reason": "method_not_found", "method": .string(method)])
    }

    /// -32602: the params do not fit the method.
    public static func invalidParams(_ detail: String) -> JSONRPCError {
        JSONRPCError(code: invalidParamsCode, message: "invalid params: \(detail)", data: ["reason": "invalid_params"])
    }

    /// -32603: the daemon failed; the request may be retried.
    public static func internalError(_ detail: String) -> JSONRPCError {
        JSONRPCError(code: internalErrorCode, message: "internal error: \(detail)", data: ["reason": "internal_error"])
    }

    // MARK: Application errors

    /// An application error: `code`, `message`, and `data` holding `reason` and `extra`.
    public static func application(
        code: Int, reason: String, message: String, extra: [String: JSONValue] = [:]
    ) -> JSONRPCError {
        var data = extra
        data["reason"] = .string(reason)
        return JSONRPCError(code: code, message: message, data: .object(data))
    }

    /// An application error from the table of ``ApplicationErrorCode``s.
    public static func application(
        _ code: ApplicationErrorCode, message: String, extra: [String: JSONValue] = [:]
    ) -> JSONRPCError {
        application(code: code.rawValue, reason: code.reason, message: message, extra: extra)
    }

    /// The error object as it travels.
    public var json: JSONValue {
        var object: [String: JSONValue] = ["code": JSONValue(code), "message": .string(message)]
        if let data { object["data"] = data }
        return .object(object)
    }

    /// The error `value` holds, if it is a well-formed error object.
    public init?(json value: JSONValue) {
        guard case .object(let object) = value,
              let code = object["code"]?.intValue, let small = Int(exactly: code),
              let message = object["message"]?.stringValue else { return nil }
        self.init(code: small, message: message, data: object["data"])
    }
}

/// One line of the control protocol.
public enum JSONRPCMessage: Sendable, Hashable {
    /// A call; with a nil id it is a notification from the client and gets no response.
    case request(id: JSONRPCID?, method: String, params: JSONValue?)
    /// The answer to a request; the id is nil only when the request's id could not be read.
    case response(id: JSONRPCID?, result: Result<JSONValue, JSONRPCError>)
    /// A notification from the daemon, such as `event`.
    ///
    /// On the wire it looks like a request without an id, so ``parse(line:limits:)`` returns
    /// every id-less message as `.request(id: nil, …)`; a client treats those as notifications.
    case notification(method: String, params: JSONValue?)

    /// The limits used for lines: nesting as for any JSON, length left to the transport.
    public static let lineLimits = JSONLimits(maxDepth: 64, maxBytes: .max)

    /// Parses and validates one line (the trailing newline is optional).
    ///
    /// - Returns: the message, or the error to answer it with: -32700 when the line is not JSON,
    ///   -32600 when it is JSON but neither a valid request nor a valid response (a batch,
    ///   missing or wrong `"jsonrpc": "2.0"`, a bad id, method, params, result or error).
    public static func parse(
        line: some Collection<UInt8>, limits: JSONLimits = lineLimits
    ) -> Result<JSONRPCMessage, JSONRPCError> {
        let value: JSONValue
        do {
            value = try JSONValue.parse(line, limits: limits)
        } catch {
            return .failure(.parseError(error.description))
        }
        return validate(value)
    }

    /// Checks that `value` is a JSON-RPC 2.0 request or response object.
    public static func validate(_ value: JSONValue) -> Result<JSONRPCMessage, JSONRPCError> {
        let object: [String: JSONValue]
        switch value {
        case .object(let members): object = members
        case .array: return .failure(.invalidRequest("batches are not supported"))
        default: return .failure(.invalidRequest("a message must be a JSON object"))
        }
        guard let version = object["jsonrpc"] else {
            return .failure(.invalidRequest("missing \"jsonrpc\": \"2.0\""))
        }
        guard version == "2.0" else {
            return .failure(.invalidRequest("\"jsonrpc\" must be \"2.0\", not \(version.serialized())"))
        }

        if let methodValue = object["method"] {
            guard case .string(let method) = methodValue else {
                return .failure(.invalidRequest("\"method\" must be a string"))
            }
            guard object["result"] == nil, object["error"] == nil else {
                return .failure(.invalidRequest("a request must not carry \"result\" or \"error\""))
            }
            var params: JSONValue?
            switch object["params"] {
            case nil, .null?: params = nil
            case .array?, .object?: params = object["params"]
            case .some:
                return .failure(.invalidRequest("\"params\" must be an object or an array"))
            }
            var id: JSONRPCID?
            if let idValue = object["id"] {
                guard let parsed = JSONRPCID(json: idValue) else {
                    return .failure(.invalidRequest("\"id\" must be a string or an integer"))
                }
                id = parsed
            }
            return .success(.request(id: id, method: method, params: params))
        }

        let result = object["result"]
        let error = object["error"]
        if result == nil && error == nil {
            return .failure(.invalidRequest("neither a request (no \"method\") nor a response (no \"result\" or \"error\")"))
        }
        if result != nil && error != nil {
            return .failure(.invalidRequest("a response must not carry both \"result\" and \"error\""))
        }
        guard let idValue = object["id"] else {
            return .failure(.invalidRequest("a response must carry \"id\""))
        }
        var id: JSONRPCID?
        if !idValue.isNull {
            guard let parsed = JSONRPCID(json: idValue) else {
                return .failure(.invalidRequest("\"id\" must be a string, an integer or null"))
            }
            id = parsed
        }
        if let result {
            return .success(.response(id: id, result: .success(result)))
        }
        guard let error, let parsed = JSONRPCError(json: error) else {
            return .failure(.invalidRequest(
                "\"error\" must be an object with an integer \"code\" and a string \"message\""))
        }
        return .success(.response(id: id, result: .failure(parsed)))
    }

    /// The message as one line of compact JSON ending in `\n`, members in a fixed order.
    public func serializedLine() -> String {
        String(decoding: serializedLineBytes(), as: UTF8.self)
    }

    /// ``serializedLine()`` as UTF-8 bytes.
    public func serializedLineBytes() -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(128)
        output.append(contentsOf: #"{"jsonrpc":"2.0""#.utf8)
        func member(_ name: String, _ value: JSONValue) {
            output.append(0x2C)
            output.append(0x22)
            output.append(contentsOf: name.utf8)
            output.append(contentsOf: #"":"#.utf8)
            value.write(to: &output)
        }
        switch self {
        case .request(let id, let method, let params):
            if let id { member("id", id.json) }
            member("method", .string(method))
            if let params { member("params", params) }
        case .notification(let method, let params):
            member("method", .string(method))
            if let params { member("params", params) }
        case .response(let id, let result):
            member("id", id?.json ?? .null)
            switch result {
            case .success(let value): member("result", value)
            case .failure(let error): member("error", error.json)
            }
        }
        output.append(0x7D)
        output.append(0x0A)
        return output
    }

    /// The response answering `request` when it failed before its id could be read.
    public static func errorResponse(_ error: JSONRPCError, id: JSONRPCID? = nil) -> JSONRPCMessage {
        .response(id: id, result: .failure(error))
    }
}
