/// Prepayment 0x0705, client to server 0x04: the consumer keyed a top-up code (a UTRN).
public struct ConsumerTopUp: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.prepayment
    public static let commandID = PrepaymentCommandID.consumerTopUp
    public static let direction = ZCLDirection.clientToServer

    /// enum8: 0x00 energy service interface, 0x01 meter, 0x02 in-home display device.
    public var originatingDevice: UInt8
    /// Octet string, the UTRN's ASCII digits; the invalid string (0xFF) decodes as empty.
    public var topUpCode: [UInt8]

    public init(originatingDevice: UInt8, topUpCode: [UInt8]) {
        self.originatingDevice = originatingDevice
        self.topUpCode = topUpCode
    }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        originatingDevice = try reader.u8("originating device")
        topUpCode = Array(try reader.lengthPrefixed("top-up code") ?? [])
    }

    public func encode(into writer: inout WireWriter) {
        writer.u8(originatingDevice)
        writer.lengthPrefixed(topUpCode)
    }
}

/// Prepayment 0x0705, server to client 0x03: the outcome of a ConsumerTopUp.
public struct ConsumerTopUpResponse: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.prepayment
    public static let commandID = PrepaymentCommandID.consumerTopUpResponse
    public static let direction = ZCLDirection.serverToClient

    /// enum8: 0x00 accepted, 0x01 rejected (invalid), 0x02 rejected (duplicate), ...
    public var result: UInt8
    public var topUpValue: Int32
    /// enum8, as ``ConsumerTopUp/originatingDevice``.
    public var sourceOfTopUp: UInt8
    public var creditRemaining: Int32

    public init(result: UInt8, topUpValue: Int32, sourceOfTopUp: UInt8, creditRemaining: Int32) {
        self.result = result
        self.topUpValue = topUpValue
        self.sourceOfTopUp = sourceOfTopUp
        self.creditRemaining = creditRemaining
    }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        result = try reader.u8("result type")
        topUpValue = try reader.s32le("top-up value")
        sourceOfTopUp = try reader.u8("source of top-up")
        creditRemaining = try reader.s32le("credit remaining")
    }

    public func encode(into writer: inout WireWriter) {
        writer.u8(result)
        writer.s32le(topUpValue)
        writer.u8(sourceOfTopUp)
        writer.s32le(creditRemaining)
    }
}

/// Prepayment 0x0705, client to server 0x08: ask for the top-up history.
public struct GetTopUpLog: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.prepayment
    public static let commandID = PrepaymentCommandID.getTopUpLog
    public static let direction = ZCLDirection.clientToServer

    /// UTC: only top-ups at or before this time.
    public var latestEndTime: UInt32
    public var numberOfRecords: UInt8

    public init(latestEndTime: UInt32, numberOfRecords: UInt8) {
        self.latestEndTime = latestEndTime
        self.numberOfRecords = numberOfRecords
    }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        latestEndTime = try reader.u32le("latest end time")
        numberOfRecords = try reader.u8("number of records")
    }

    public func encode(into writer: inout WireWriter) {
        writer.u32le(latestEndTime)
        writer.u8(numberOfRecords)
    }
}

/// Prepayment 0x0705, server to client 0x05: one command's share of the top-up history.
public struct PublishTopUpLog: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.prepayment
    public static let commandID = PrepaymentCommandID.publishTopUpLog
    public static let direction = ZCLDirection.serverToClient

    public struct TopUp: Hashable, Sendable {
        /// Octet string; the invalid string (0xFF) decodes as empty.
        public var topUpCode: [UInt8]
        public var topUpAmount: Int32
        /// UTC.
        public var topUpTime: UInt32

        public init(topUpCode: [UInt8], topUpAmount: Int32, topUpTime: UInt32) {
            self.topUpCode = topUpCode
            self.topUpAmount = topUpAmount
            self.topUpTime = topUpTime
        }
    }

    /// This command's index, from 0, among ``totalNumberOfCommands``.
    public var commandIndex: UInt8
    public var totalNumberOfCommands: UInt8
    public var topUps: [TopUp]

    public init(commandIndex: UInt8 = 0, totalNumberOfCommands: UInt8 = 1, topUps: [TopUp]) {
        self.commandIndex = commandIndex
        self.totalNumberOfCommands = totalNumberOfCommands
        self.topUps = topUps
    }

    /// - Throws: also when the payload ends inside a record.
    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        commandIndex = try reader.u8("command index")
        totalNumberOfCommands = try reader.u8("total number of commands")
        var topUps: [TopUp] = []
        while !reader.isAtEnd {
            topUps.append(TopUp(
                topUpCode: Array(try reader.lengthPrefixed("top-up code") ?? []),
                topUpAmount: try reader.s32le("top-up amount"),
                topUpTime: try reader.u32le("top-up time")))
        }
        self.topUps = topUps
    }

    public func encode(into writer: inout WireWriter) {
        writer.u8(commandIndex)
        writer.u8(totalNumberOfCommands)
        for topUp in topUps {
            writer.lengthPrefixed(topUp.topUpCode)
            writer.s32le(topUp.topUpAmount)
            writer.u32le(topUp.topUpTime)
        }
    }
}

/// Prepayment 0x0705, client to server 0x0A: ask for the debt repayment history.
public struct GetDebtRepaymentLog: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.prepayment
    public static let commandID = PrepaymentCommandID.getDebtRepaymentLog
    public static let direction = ZCLDirection.clientToServer

    /// UTC: only collections at or before this time.
    public var latestEndTime: UInt32
    public var numberOfDebts: UInt8
    /// enum8: 0x00 debt 1, 0x01 debt 2, 0x02 debt 3, 0xFF all.
    public var debtType: UInt8

    public init(latestEndTime: UInt32, numberOfDebts: UInt8, debtType: UInt8) {
        self.latestEndTime = latestEndTime
        self.numberOfDebts = numberOfDebts
        self.debtType = debtType
    }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        latestEndTime = try reader.u32le("latest end time")
        numberOfDebts = try reader.u8("number of debts")
        debtType = try reader.u8("debt type")
    }

    public func encode(into writer: inout WireWriter) {
        writer.u32le(latestEndTime)
        writer.u8(numberOfDebts)
        writer.u8(debtType)
    }
}

/// Prepayment 0x0705, server to client 0x06: one command's share of the debt repayment history.
public struct PublishDebtLog: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.prepayment
    public static let commandID = PrepaymentCommandID.publishDebtLog
    public static let direction = ZCLDirection.serverToClient

    /// Each record is 13 bytes.
    public struct DebtCollection: Hashable, Sendable {
        /// UTC.
        public var collectionTime: UInt32
        public var amountCollected: UInt32
        /// enum8.
        public var debtType: UInt8
        public var outstandingDebt: UInt32

        public init(collectionTime: UInt32, amountCollected: UInt32, debtType: UInt8, outstandingDebt: UInt32) {
            self.collectionTime = collectionTime
            self.amountCollected = amountCollected
            self.debtType = debtType
            self.outstandingDebt = outstandingDebt
        }
    }

    public var commandIndex: UInt8
    public var totalNumberOfCommands: UInt8
    public var collections: [DebtCollection]

    public init(commandIndex: UInt8 = 0, totalNumberOfCommands: UInt8 = 1, collections: [DebtCollection]) {
        self.commandIndex = commandIndex
        self.totalNumberOfCommands = totalNumberOfCommands
        self.collections = collections
    }

    /// - Throws: also when the payload ends inside a record.
    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        commandIndex = try reader.u8("command index")
        totalNumberOfCommands = try reader.u8("total number of commands")
        var collections: [DebtCollection] = []
        while !reader.isAtEnd {
            collections.append(DebtCollection(
                collectionTime: try reader.u32le("collection time"),
                amountCollected: try reader.u32le("amount collected"),
                debtType: try reader.u8("debt type"),
                outstandingDebt: try reader.u32le("outstanding debt")))
        }
        self.collections = collections
    }

    public func encode(into writer: inout WireWriter) {
        writer.u8(commandIndex)
        writer.u8(totalNumberOfCommands)
        for collection in collections {
            writer.u32le(collection.collectionTime)
            writer.u32le(collection.amountCollected)
            writer.u8(collection.debtType)
            writer.u32le(collection.outstandingDebt)
        }
    }
}
