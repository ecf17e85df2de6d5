import SMETSRPC

extension FuzzTarget {
    /// The JSON value parser the control API and smetsctl use.
    ///
    /// Input: the JSON text. Properties: with the default limits and with tight ones (depth 3,
    /// 64 bytes) the parser returns or throws an error at an offset inside the input; the tight
    /// limits never accept what the default ones refuse, and accept it as the same value;
    /// parse(serialize(v)) == v for the compact form (sorted or not) and the pretty form.
    public static let json = FuzzTarget(
        name: "json",
        summary: "JSONValue.parse under default and tight limits; serialize/prettyPrint round trips"
    ) { bytes in
        let value: JSONValue
        let tight = JSONLimits(maxDepth: 3, maxBytes: 64)
        let tightResult: JSONValue?
        do throws(JSONParseError) {
            tightResult = try JSONValue.parse(bytes, limits: tight)
        } catch {
            if let failure = checkParseError(error, inputCount: bytes.count) { return failure }
            tightResult = nil
        }
        do throws(JSONParseError) {
            value = try JSONValue.parse(bytes)
        } catch {
            if tightResult != nil { return "tight limits accepted what the default ones refuse: \(error)" }
            return checkParseError(error, inputCount: bytes.count)
        }
        if let tightResult, tightResult != value { return "tight limits read \(tightResult), default \(value)" }
        let forms: [(String, [UInt8])] = [
            ("serializedBytes()", value.serializedBytes()),
            ("serializedBytes(sortedKeys: false)", value.serializedBytes(sortedKeys: false)),
            ("prettyPrinted()", Array(value.prettyPrinted().utf8)),
        ]
        for (name, text) in forms {
            do throws(JSONParseError) {
                let again = try JSONValue.parse(text)
                if again != value { return "parse(\(name)) of \(value) is \(again)" }
            } catch {
                return "\(name) of \(value) does not parse: \(error)"
            }
        }
        return nil
    }

    static func checkParseError(_ error: JSONParseError, inputCount: Int) -> String? {
        guard error.offset >= 0, error.offset <= inputCount else {
            return "\(error) names an offset outside the \(inputCount)-byte input"
        }
        return error.description.isEmpty ? "an error without a description" : nil
    }

    /// JSON-RPC 2.0 lines as the control server reads them.
    ///
    /// Input: one line. Properties: `JSONRPCMessage.parse(line:)` gives a message or a -32700 /
    /// -32600 error with a message; a message's serialized line parses back to the same message;
    /// an error response to it serializes to a line that parses as that response.
    public static let jsonRPC = FuzzTarget(
        name: "jsonrpc",
        summary: "JSONRPCMessage.parse(line:) and validate; serializedLine round trip"
    ) { bytes in
        switch JSONRPCMessage.parse(line: bytes) {
        case let .failure(error):
            guard error.code == JSONRPCError.parseErrorCode || error.code == JSONRPCError.invalidRequestCode else {
                return "a line was refused with code \(error.code)"
            }
            if error.message.isEmpty { return "a refusal without a message" }
            let answer = JSONRPCMessage.errorResponse(error)
            if case let .success(parsed) = JSONRPCMessage.parse(line: answer.serializedLineBytes()), parsed == answer {
                return nil
            }
            return "the error response \(answer.serializedLine()) does not parse back"
        case let .success(message):
            let line = message.serializedLineBytes()
            switch JSONRPCMessage.parse(line: line) {
            case let .success(again) where again == message: return nil
            case let .success(again): return "parse(serialize(\(message))) is \(again)"
            case let .failure(error): return "the serialized line \(message.serializedLine()) is refused: \(error)"
            }
        }
    }
}
