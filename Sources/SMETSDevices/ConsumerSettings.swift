import SMETSCore
import SMETSWire

/// The settings a consumer makes on a display (budgets, alerts, brightness): consumer data, cleared
/// by a Change of Tenancy with bit 9 where the model keeps and clears `consumerData`.
///
/// Written at the keypad (the control method `display.settings`) or over the HAN: a Write Attributes
/// of the manufacturer-specific attribute ``attributeID`` on the Basic cluster, with the display's
/// manufacturer code, whose character string is `name=value` (one record per setting). The ZCL has
/// no standard command for these settings, so they are the manufacturer's own, as on real displays.
///
/// A value with no state of its own: the executor reads the settings held inside its store
/// transaction, asks the machine, and commits the ``Action/persist(_:)`` changes in that same
/// transaction before it answers.
public struct ConsumerSettings: Sendable, Hashable {
    /// The most settings a display holds, and the longest name and value: a keypad, not a database.
    public static let maxSettings = 32, maxNameBytes = 32, maxValueBytes = 64
    /// The manufacturer-specific Basic attribute a setting is written to (`name=value`).
    public static let attributeID: UInt16 = 0xFF00

    /// Why a setting was not made.
    public enum Refusal: Error, Sendable, Hashable, CustomStringConvertible {
        /// The model keeps no consumer data.
        case notKept(model: String)
        case badName(String)
        case valueTooLong(name: String)
        case full
        /// A HAN record for another attribute, or without the display's manufacturer code.
        case notASetting(attributeID: UInt16)
        /// A HAN record for ``attributeID`` whose value is not a character string.
        case notAString
        /// A HAN record whose string has no `=`.
        case noEquals

        public var description: String {
            switch self {
            case .notKept(let model): "model \(model) keeps no consumer data (keeps has no consumerData)"
            case .badName(let name): "setting name '\(name.prefix(40))' must be 1...\(ConsumerSettings.maxNameBytes) printable ASCII characters, no '='"
            case .valueTooLong(let name): "setting \(name): the value is over \(ConsumerSettings.maxValueBytes) bytes"
            case .full: "a display holds at most \(ConsumerSettings.maxSettings) settings"
            case .notASetting(let id): "attribute 0x\(upperHex(id, width: 4)) is not a consumer setting"
            case .notAString: "a consumer setting is a character string"
            case .noEquals: "a consumer setting is written as name=value"
            }
        }

        /// The ZCL status a Write Attributes record gets for this refusal.
        public var status: ZCLStatus {
            switch self {
            case .notKept, .notASetting: .unsupportedAttribute
            case .badName, .valueTooLong, .noEquals: .invalidValue
            case .notAString: .invalidDataType
            case .full: .insufficientSpace
            }
        }
    }

    public enum Input: Sendable, Hashable {
        /// The consumer sets `changes` (in order; a later one of the same name wins) at `now`, on a
        /// display whose model keeps consumer data or not, holding `held`.
        case set([Setting], held: [String: String], keepsConsumerData: Bool, now: Timestamp)
        /// Write Attributes over the HAN, with the frame's manufacturer code.
        case writeAttributes(WriteAttributes, manufacturerCode: UInt16?, held: [String: String], keepsConsumerData: Bool, now: Timestamp)
    }

    public struct Setting: Sendable, Hashable {
        public var name: String
        public var value: String
        public init(name: String, value: String) { self.name = name; self.value = value }
    }

    public enum Action: Sendable, Hashable {
        /// The setting is stored, made at `time`.
        case persist(Setting, time: Timestamp)
        /// The control request is refused, nothing stored.
        case refuse(Refusal)
        /// The Write Attributes Response.
        case respond(WriteAttributesResponse)
        /// The names of the settings changed (never the values: what the consumer chose is theirs).
        case changed([String])
    }

    /// The display's model key (named in a refusal) and its manufacturer code (a HAN write must carry it).
    public let model: String
    public let manufacturerCode: UInt16?

    public init(model: String, manufacturerCode: UInt16?) { self.model = model; self.manufacturerCode = manufacturerCode }

    public func receive(_ input: Input) -> [Action] {
        switch input {
        case let .set(changes, held, keeps, now):
            guard keeps else { return [.refuse(.notKept(model: model))] }
            for change in changes {
                if let refusal = Self.check(change) { return [.refuse(refusal)] }
            }
            var after = held
            for change in changes { after[change.name] = change.value }
            guard after.count <= Self.maxSettings else { return [.refuse(.full)] }
            guard !changes.isEmpty else { return [] }
            return changes.map { .persist($0, time: now) } + [.changed(Array(Set(changes.map(\.name))).sorted())]
        case let .writeAttributes(write, code, held, keeps, now):
            return writeAttributes(write, code: code, held: held, keeps: keeps, now: now)
        }
    }

    /// Write Attributes: each record on its own (not undivided), the ZCL's status for each refused.
    private func writeAttributes(_ write: WriteAttributes, code: UInt16?, held: [String: String], keeps: Bool, now: Timestamp) -> [Action] {
        var after = held
        var made: [Setting] = []
        var failures: [WriteAttributesResponse.Failure] = []
        for record in write.records {
            let setting: Setting
            switch Self.setting(record, code: code, expected: manufacturerCode) {
            case .failure(let refusal):
                failures.append(.init(status: refusal.status, attributeID: record.attributeID))
                continue
            case .success(let parsed): setting = parsed
            }
            if !keeps {
                failures.append(.init(status: Refusal.notKept(model: model).status, attributeID: record.attributeID))
            } else if let refusal = Self.check(setting) {
                failures.append(.init(status: refusal.status, attributeID: record.attributeID))
            } else if after[setting.name] == nil && after.count >= Self.maxSettings {
                failures.append(.init(status: Refusal.full.status, attributeID: record.attributeID))
            } else {
                after[setting.name] = setting.value
                made.append(setting)
            }
        }
        var actions: [Action] = made.map { .persist($0, time: now) }
        if !made.isEmpty { actions.append(.changed(Array(Set(made.map(\.name))).sorted())) }
        return actions + [.respond(WriteAttributesResponse(failures: failures))]
    }

    /// What the store's failure makes of `input`: a control request errs (the executor reports it);
    /// a HAN write answers FAILURE for every record, nothing kept.
    public func storeFailed(_ input: Input) -> [Action] {
        switch input {
        case .set: return []
        case let .writeAttributes(write, _, _, _, _):
            return [.respond(WriteAttributesResponse(failures: write.records.map { .init(status: .failure, attributeID: $0.attributeID) }))]
        }
    }

    static func check(_ setting: Setting) -> Refusal? {
        let name = setting.name.utf8
        guard (1...maxNameBytes).contains(name.count), name.allSatisfy({ $0 < 0x7F && $0 > 0x20 && $0 != UInt8(ascii: "=") }) else {
            return .badName(setting.name)
        }
        guard setting.value.utf8.count <= maxValueBytes else { return .valueTooLong(name: setting.name) }
        return nil
    }

    /// A HAN record as a setting: the manufacturer's attribute, a `name=value` character string.
    static func setting(_ record: WriteAttributes.Record, code: UInt16?, expected: UInt16?) -> Result<Setting, Refusal> {
        guard record.attributeID == attributeID, code != nil, code == expected else { return .failure(.notASetting(attributeID: record.attributeID)) }
        guard case .charString(let string) = record.value else { return .failure(.notAString) }
        guard let text = string, let equals = text.firstIndex(of: "=") else { return .failure(.noEquals) }
        return .success(Setting(name: String(text[..<equals]), value: String(text[text.index(after: equals)...])))
    }
}
