/// Global command IDs used by the emulated devices.
public enum ZCLGlobalCommandID {
    public static let readAttributes: UInt8 = 0x00
    public static let readAttributesResponse: UInt8 = 0x01
    public static let writeAttributes: UInt8 = 0x02
    public static let writeAttributesResponse: UInt8 = 0x04
    public static let defaultResponse: UInt8 = 0x0B
}

/// Read Attributes (0x00): the attribute IDs asked for.
public struct ReadAttributes: ZCLGlobalCommand {
    public static let commandID = ZCLGlobalCommandID.readAttributes

    public var attributeIDs: [UInt16]

    public init(attributeIDs: [UInt16]) { self.attributeIDs = attributeIDs }

    /// - Throws: ``WireError/truncated(field:offset:needed:available:)`` for a trailing odd byte,
    ///   half an attribute ID.
    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        var ids: [UInt16] = []
        ids.reserveCapacity(payload.count / 2)
        while !reader.isAtEnd { ids.append(try reader.u16le("attribute ID")) }
        attributeIDs = ids
    }

    public func encode(into writer: inout WireWriter) {
        for id in attributeIDs { writer.u16le(id) }
    }
}

/// Read Attributes Response (0x01): one record per attribute asked for, in the order asked.
public struct ReadAttributesResponse: ZCLGlobalCommand {
    public static let commandID = ZCLGlobalCommandID.readAttributesResponse

    /// One attribute's answer: its value, or the status saying why there is none.
    public struct Record: Hashable, Sendable {
        public enum Outcome: Hashable, Sendable {
            case value(ZCLValue)
            /// A status other than SUCCESS; encoding writes FAILURE (0x01) for a stray 0x00,
            /// since a SUCCESS record must carry a value.
            case status(UInt8)
        }

        public var attributeID: UInt16
        public var outcome: Outcome

        public init(attributeID: UInt16, outcome: Outcome) {
            self.attributeID = attributeID
            self.outcome = outcome
        }

        public static func value(_ attributeID: UInt16, _ value: ZCLValue) -> Record {
            Record(attributeID: attributeID, outcome: .value(value))
        }

        public static func status(_ attributeID: UInt16, _ status: ZCLStatus) -> Record {
            Record(attributeID: attributeID, outcome: .status(status.rawValue))
        }

        /// The record's status byte as it goes on the wire.
        public var statusCode: UInt8 {
            switch outcome {
            case .value: ZCLStatus.success.rawValue
            case let .status(code): code == ZCLStatus.success.rawValue ? ZCLStatus.failure.rawValue : code
            }
        }

        public var status: ZCLStatus? { ZCLStatus(rawValue: statusCode) }

        public var value: ZCLValue? {
            if case let .value(value) = outcome { value } else { nil }
        }

        /// Writes the record: attribute ID, status, and for SUCCESS the typed value.
        public func encode(into writer: inout WireWriter) {
            writer.u16le(attributeID)
            writer.u8(statusCode)
            if case let .value(value) = outcome { value.encodeTyped(into: &writer) }
        }
    }

    public var records: [Record]

    public init(records: [Record]) { self.records = records }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        var records: [Record] = []
        while !reader.isAtEnd {
            let id = try reader.u16le("attribute ID")
            let status = try reader.u8("attribute status")
            if status == ZCLStatus.success.rawValue {
                records.append(.value(id, try ZCLValue(decodingTypedFrom: &reader)))
            } else {
                records.append(Record(attributeID: id, outcome: .status(status)))
            }
        }
        self.records = records
    }

    public func encode(into writer: inout WireWriter) {
        for record in records { record.encode(into: &writer) }
    }

    /// The record for `attributeID`, if there is one.
    public subscript(attributeID: UInt16) -> Record? {
        records.first { $0.attributeID == attributeID }
    }
}

/// Write Attributes (0x02): attribute ID and typed value, per record.
public struct WriteAttributes: ZCLGlobalCommand {
    public static let commandID = ZCLGlobalCommandID.writeAttributes

    public struct Record: Hashable, Sendable {
        public var attributeID: UInt16
        public var value: ZCLValue
        public init(attributeID: UInt16, value: ZCLValue) { self.attributeID = attributeID; self.value = value }
    }

    public var records: [Record]

    public init(records: [Record]) { self.records = records }

    /// - Throws: a ``WireError`` for a record cut short or a data type this module does not read.
    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        var records: [Record] = []
        while !reader.isAtEnd {
            let id = try reader.u16le("attribute ID")
            records.append(Record(attributeID: id, value: try ZCLValue(decodingTypedFrom: &reader)))
        }
        self.records = records
    }

    public func encode(into writer: inout WireWriter) {
        for record in records {
            writer.u16le(record.attributeID)
            record.value.encodeTyped(into: &writer)
        }
    }
}

/// Write Attributes Response (0x04): a single SUCCESS when every attribute was written, else one
/// status record (status, attribute ID) per attribute that was not.
public struct WriteAttributesResponse: ZCLGlobalCommand {
    public static let commandID = ZCLGlobalCommandID.writeAttributesResponse

    public struct Failure: Hashable, Sendable {
        public var statusCode: UInt8
        public var attributeID: UInt16
        public init(status: ZCLStatus, attributeID: UInt16) { self.statusCode = status.rawValue; self.attributeID = attributeID }
        public init(statusCode: UInt8, attributeID: UInt16) { self.statusCode = statusCode; self.attributeID = attributeID }
        public var status: ZCLStatus? { ZCLStatus(rawValue: statusCode) }
    }

    /// Empty: every attribute was written.
    public var failures: [Failure]

    public init(failures: [Failure]) { self.failures = failures }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        let first = try reader.u8("status")
        guard first != ZCLStatus.success.rawValue || !reader.isAtEnd else { failures = []; return }
        var failures = [Failure(statusCode: first, attributeID: try reader.u16le("attribute ID"))]
        while !reader.isAtEnd {
            let status = try reader.u8("status")
            failures.append(Failure(statusCode: status, attributeID: try reader.u16le("attribute ID")))
        }
        self.failures = failures
    }

    public func encode(into writer: inout WireWriter) {
        guard !failures.isEmpty else { writer.u8(ZCLStatus.success.rawValue); return }
        for failure in failures {
            writer.u8(failure.statusCode)
            writer.u16le(failure.attributeID)
        }
    }
}

/// Default Response (0x0B): the outcome of a command that has no specific response.
public struct DefaultResponse: ZCLGlobalCommand {
    public static let commandID = ZCLGlobalCommandID.defaultResponse

    /// The command answered.
    public var commandID: UInt8
    /// Raw, so that a status this build does not name survives.
    public var statusCode: UInt8

    public init(commandID: UInt8, statusCode: UInt8) {
        self.commandID = commandID
        self.statusCode = statusCode
    }

    public init(commandID: UInt8, status: ZCLStatus) {
        self.init(commandID: commandID, statusCode: status.rawValue)
    }

    public var status: ZCLStatus? { ZCLStatus(rawValue: statusCode) }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        commandID = try reader.u8("command ID")
        statusCode = try reader.u8("status")
    }

    public func encode(into writer: inout WireWriter) {
        writer.u8(commandID)
        writer.u8(statusCode)
    }
}
