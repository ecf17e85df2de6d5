import Testing
import SMETSRPC

private func parse(_ line: String) -> Result<JSONRPCMessage, JSONRPCError> {
    JSONRPCMessage.parse(line: Array(line.utf8))
}

private func failure(_ line: String) -> JSONRPCError? {
    if case .failure(let error) = parse(line) { return error }
    return nil
}

@Suite("JSON-RPC messages")
struct JSONRPCTests {
    @Test("requests")
    func requests() throws {
        #expect(try parse(#"{"jsonrpc":"2.0","id":1,"method":"daemon.status"}"#).get()
            == .request(id: .number(1), method: "daemon.status", params: nil))
        #expect(try parse(#"{"jsonrpc":"2.0","id":"a-1","method":"devices.get","params":{"id":"x"}}"# + "\n").get()
            == .request(id: .string("a-1"), method: "devices.get", params: ["id": "x"]))
        #expect(try parse(#"{"method":"m","params":[1,2],"jsonrpc":"2.0","id":-5}"#).get()
            == .request(id: -5, method: "m", params: [1, 2]))
        #expect(try parse(#"{"jsonrpc":"2.0","method":"event","params":{"seq":1}}"#).get()
            == .request(id: nil, method: "event", params: ["seq": 1]), "no id: a notification")
        #expect(try parse(#"{"jsonrpc":"2.0","id":2,"method":"m","params":null}"#).get()
            == .request(id: 2, method: "m", params: nil), "null params count as none")
        #expect(try parse(#"{"jsonrpc":"2.0","id":2,"method":"m","extra":1}"#).get()
            == .request(id: 2, method: "m", params: nil), "unknown members are ignored")
    }

    @Test("invalid requests", arguments: [
        (#"{"id":1,"method":"m"}"#, "missing jsonrpc"),
        (#"{"jsonrpc":"1.0","id":1,"method":"m"}"#, "wrong version"),
        (#"{"jsonrpc":2.0,"id":1,"method":"m"}"#, "version as a number"),
        (#"{"jsonrpc":"2.0","id":1,"method":7}"#, "method not a string"),
        (#"{"jsonrpc":"2.0","id":1,"method":"m","params":3}"#, "scalar params"),
        (#"{"jsonrpc":"2.0","id":1,"method":"m","params":"a"}"#, "string params"),
        (#"{"jsonrpc":"2.0","id":null,"method":"m"}"#, "null id in a request"),
        (#"{"jsonrpc":"2.0","id":1.5,"method":"m"}"#, "fractional id"),
        (#"{"jsonrpc":"2.0","id":1e3,"method":"m"}"#, "exponent id"),
        (#"{"jsonrpc":"2.0","id":true,"method":"m"}"#, "boolean id"),
        (#"{"jsonrpc":"2.0","id":[1],"method":"m"}"#, "array id"),
        (#"{"jsonrpc":"2.0","id":{},"method":"m"}"#, "object id"),
        (#"{"jsonrpc":"2.0","id":1,"method":"m","result":1}"#, "request with a result"),
        (#"{"jsonrpc":"2.0","id":1}"#, "neither request nor response"),
        (#"{"jsonrpc":"2.0"}"#, "nothing at all"),
        (#"[{"jsonrpc":"2.0","id":1,"method":"m"}]"#, "a batch"),
        (#"[]"#, "an empty batch"),
        (#""hello""#, "a string"),
        ("42", "a number"),
        ("null", "null"),
    ])
    func invalidRequests(line: String, why: String) {
        let error = failure(line)
        #expect(error?.code == -32600, "\(why)")
        #expect(error?.reason == "invalid_request", "\(why)")
    }

    @Test("batches are answered with a clear message")
    func batches() {
        #expect(failure("[1]")?.message == "invalid request: batches are not supported")
    }

    @Test("lines that are not JSON are parse errors", arguments: [
        "", "{", #"{"jsonrpc":"2.0","id":1,"method":"m""#, "{'a':1}", #"{"jsonrpc":"2.0"} x"#, "\u{FEFF}{}",
    ])
    func parseErrors(line: String) {
        let error = failure(line)
        #expect(error?.code == -32700)
        #expect(error?.reason == "parse_error")
    }

    @Test("responses")
    func responses() throws {
        #expect(try parse(#"{"jsonrpc":"2.0","id":1,"result":{"subscribed":true}}"#).get()
            == .response(id: 1, result: .success(["subscribed": true])))
        #expect(try parse(#"{"jsonrpc":"2.0","id":"x","result":null}"#).get()
            == .response(id: "x", result: .success(.null)))
        let error = JSONRPCError.application(.deviceNotFound, message: "no device 00-DB-12-34-56-78-90-FF")
        #expect(try parse(#"{"jsonrpc":"2.0","id":7,"error":{"code":1001,"message":"no device 00-DB-12-34-56-78-90-FF","data":{"reason":"device_not_found"}}}"#).get()
            == .response(id: 7, result: .failure(error)))
        #expect(try parse(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}"#).get()
            == .response(id: nil, result: .failure(JSONRPCError(code: -32700, message: "bad"))))
    }

    @Test("invalid responses", arguments: [
        (#"{"jsonrpc":"2.0","result":1}"#, "response without id"),
        (#"{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"m"}}"#, "result and error"),
        (#"{"jsonrpc":"2.0","id":1.5,"result":1}"#, "fractional id"),
        (#"{"jsonrpc":"2.0","id":false,"result":1}"#, "boolean id"),
        (#"{"jsonrpc":"2.0","id":1,"error":"boom"}"#, "error not an object"),
        (#"{"jsonrpc":"2.0","id":1,"error":null}"#, "null error"),
        (#"{"jsonrpc":"2.0","id":1,"error":{"message":"m"}}"#, "error without code"),
        (#"{"jsonrpc":"2.0","id":1,"error":{"code":"1001","message":"m"}}"#, "string code"),
        (#"{"jsonrpc":"2.0","id":1,"error":{"code":1.5,"message":"m"}}"#, "fractional code"),
        (#"{"jsonrpc":"2.0","id":1,"error":{"code":1001}}"#, "error without message"),
        (#"{"jsonrpc":"2.0","id":1,"error":{"code":1001,"message":7}}"#, "message not a string"),
    ])
    func invalidResponses(line: String, why: String) {
        #expect(failure(line)?.code == -32600, "\(why)")
    }

    @Test("serialised lines")
    func serialisation() {
        #expect(JSONRPCMessage.request(id: 1, method: "daemon.status", params: nil).serializedLine()
            == #"{"jsonrpc":"2.0","id":1,"method":"daemon.status"}"# + "\n")
        #expect(JSONRPCMessage.request(id: nil, method: "n", params: [1]).serializedLine()
            == #"{"jsonrpc":"2.0","method":"n","params":[1]}"# + "\n")
        #expect(JSONRPCMessage.notification(method: "event", params: ["seq": 17, "type": "device.joined"]).serializedLine()
            == #"{"jsonrpc":"2.0","method":"event","params":{"seq":17,"type":"device.joined"}}"# + "\n")
        #expect(JSONRPCMessage.response(id: "a", result: .success(["ok": true])).serializedLine()
            == #"{"jsonrpc":"2.0","id":"a","result":{"ok":true}}"# + "\n")
        let error = JSONRPCError.application(code: 1001, reason: "device_not_found", message: "no device X")
        #expect(JSONRPCMessage.response(id: 7, result: .failure(error)).serializedLine()
            == #"{"jsonrpc":"2.0","id":7,"error":{"code":1001,"data":{"reason":"device_not_found"},"message":"no device X"}}"# + "\n")
        #expect(JSONRPCMessage.errorResponse(.parseError("x")).serializedLine().hasPrefix(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"#))
    }

    @Test("every message survives a round trip")
    func roundTrip() throws {
        let messages: [JSONRPCMessage] = [
            .request(id: 1, method: "a", params: nil),
            .request(id: "s", method: "b", params: ["k": [1, "\n"]]),
            .request(id: nil, method: "c", params: []),
            .response(id: .number(.max), result: .success(.null)),
            .response(id: nil, result: .failure(.invalidRequest("no"))),
            .response(id: 3, result: .failure(.application(.notAuthorised, message: "no", extra: ["role": "reader"]))),
        ]
        for message in messages {
            #expect(try JSONRPCMessage.parse(line: Array(message.serializedLine().utf8)).get() == message)
        }
        let notification = JSONRPCMessage.notification(method: "event", params: ["seq": 1])
        #expect(try JSONRPCMessage.parse(line: Array(notification.serializedLine().utf8)).get()
            == .request(id: nil, method: "event", params: ["seq": 1]))
    }

    @Test("error constructors")
    func errors() {
        #expect(JSONRPCError.parseError("x").code == -32700)
        #expect(JSONRPCError.invalidRequest("x").code == -32600)
        #expect(JSONRPCError.methodNotFound("nope").code == -32601)
        #expect(JSONRPCError.methodNotFound("nope").message == "method not found: nope")
        #expect(JSONRPCError.invalidParams("x").code == -32602)
        #expect(JSONRPCError.internalError("x").code == -32603)
        let error = JSONRPCError.application(code: 1003, reason: "premises_not_found", message: "no premises P9", extra: ["premises": "P9"])
        #expect(error.reason == "premises_not_found")
        #expect(error.data == ["reason": "premises_not_found", "premises": "P9"])
        #expect(error.applicationCode == .premisesNotFound)
        #expect(error.description == "no premises P9 (premises_not_found, code 1003)")
        #expect(JSONRPCError(code: 5, message: "m").reason == nil)
        #expect(JSONRPCError(code: 5, message: "m").description == "m (code 5)")
    }

    @Test("application error codes match the API document")
    func applicationCodes() {
        let table: [(Int, String)] = [
            (1001, "device_not_found"), (1002, "device_exists"), (1003, "premises_not_found"),
            (1004, "model_not_found"), (1005, "not_a_hub"), (1006, "not_joinable"), (1007, "not_joined"),
            (1008, "invalid_state"), (1009, "clock_invalid"), (1010, "limit_exceeded"), (1100, "not_authorised"),
            (1020, "storage_unavailable"), (1021, "path_refused"),
        ]
        #expect(ApplicationErrorCode.allCases.map { ($0.rawValue) } == table.map(\.0))
        #expect(ApplicationErrorCode.allCases.map(\.reason) == table.map(\.1))
        #expect(ApplicationErrorCode.deviceNotFound.rawValue == 1001)
        #expect(ApplicationErrorCode.notAuthorised.code == 1100)
        #expect(ApplicationErrorCode(reason: "not_a_hub") == .notAHub)
    }
}
