import Dispatch
import SMETSCore
import SMETSDUIS
import SMETSRPC

extension ControlRouter {
    /// duis.submit and duis.responses: the DUIS front driven over the control API (smetsctl duis).
    static func duisMethods(duis: DUISService?) -> [ControlMethod] {
        @Sendable func running() throws(JSONRPCError) -> DUISService {
            guard let duis else { throw .application(.invalidState, message: "the DUIS front is not running in this process") }
            return duis
        }
        return [
            ControlMethod(name: "duis.submit") { params, _ in
                let service = try running()
                let name = try params.string("path") ?? "serviceS"
                guard let path = DUISServicePath.allCases.first(where: { $0.rawValue == name || $0.rawValue.hasSuffix("/" + name) }) else {
                    throw JSONRPCError.invalidParams("path: '\(name)' is none of serviceS, serviceT, serviceD")
                }
                let xml = try params.requiredString("xml")
                let reply = service.handle(path: path, body: Array(xml.utf8))
                if let then = reply.then { DispatchQueue.global().async { then() } }
                return .object(["status": .int(Int64(reply.status)), "contentType": .string(reply.contentType), "body": .string(reply.body)])
            },
            ControlMethod(name: "duis.responses") { params, _ in
                let service = try running()
                let after = try params.int("after") ?? 0
                let limit = Int(min(max(try params.int("limit") ?? 100, 1), 1000))
                let requestID = try params.string("requestID")
                var entries = service.outbox.list(after: after, limit: requestID == nil ? limit : Int.max)
                if let requestID { entries = Array(entries.filter { $0.requestID == requestID.uppercased() || $0.requestID == requestID }.prefix(limit)) }
                let counts = service.outbox.counts
                return .object([
                    "responses": .array(entries.map(\.json)), "kept": .int(Int64(counts.kept)),
                    "delivered": .int(Int64(counts.delivered)), "dropped": .int(Int64(counts.dropped)),
                    "last": .int(entries.last?.seq ?? after),
                ])
            },
        ]
    }
}
