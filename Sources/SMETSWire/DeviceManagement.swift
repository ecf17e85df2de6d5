/// Device Management 0x0708, server to client 0x00: the premises has a new occupant.
///
/// SECMP0056: at ``implementationTime`` a PPMID or IHD clears what ``tenancyChangeControl`` selects.
public struct PublishChangeOfTenancy: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.deviceManagement
    public static let commandID = DeviceManagementCommandID.publishChangeOfTenancy
    public static let direction = ZCLDirection.serverToClient

    /// Bits of the proposed tenancy change control (gb-smart-metering.md).
    public enum ControlBit {
        public static let preSnapshot: UInt32 = 1 << 0
        public static let postSnapshot: UInt32 = 1 << 1
        public static let resetCreditRegister: UInt32 = 1 << 2
        public static let resetDebitRegister: UInt32 = 1 << 3
        public static let resetBillingPeriod: UInt32 = 1 << 4
        public static let clearTariffPlan: UInt32 = 1 << 5
        public static let clearStandingCharge: UInt32 = 1 << 6
        public static let blockHistoricalLoadProfile: UInt32 = 1 << 7
        public static let clearHistoricalLoadProfile: UInt32 = 1 << 8
        public static let clearIHDDataConsumer: UInt32 = 1 << 9
        public static let clearIHDDataSupplier: UInt32 = 1 << 10
        /// Bits 11-12: meter contactor state.
        public static let meterContactorStateMask: UInt32 = 0b11 << 11
        public static let clearTransactionLog: UInt32 = 1 << 13
        public static let clearPrepaymentLog: UInt32 = 1 << 14
    }

    public var providerID: UInt32
    public var issuerEventID: UInt32
    public var tariffType: UInt8
    /// UTC; 0 means now.
    public var implementationTime: UInt32
    /// Bitmap32 of ``ControlBit``.
    public var tenancyChangeControl: UInt32

    public init(providerID: UInt32, issuerEventID: UInt32, tariffType: UInt8, implementationTime: UInt32, tenancyChangeControl: UInt32) {
        self.providerID = providerID
        self.issuerEventID = issuerEventID
        self.tariffType = tariffType
        self.implementationTime = implementationTime
        self.tenancyChangeControl = tenancyChangeControl
    }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        providerID = try reader.u32le("provider ID")
        issuerEventID = try reader.u32le("issuer event ID")
        tariffType = try reader.u8("tariff type")
        implementationTime = try reader.u32le("implementation date/time")
        tenancyChangeControl = try reader.u32le("proposed tenancy change control")
    }

    public func encode(into writer: inout WireWriter) {
        writer.u32le(providerID)
        writer.u32le(issuerEventID)
        writer.u8(tariffType)
        writer.u32le(implementationTime)
        writer.u32le(tenancyChangeControl)
    }
}

/// Device Management 0x0708, server to client 0x01: the energy supplier is changing.
public struct PublishChangeOfSupplier: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.deviceManagement
    public static let commandID = DeviceManagementCommandID.publishChangeOfSupplier
    public static let direction = ZCLDirection.serverToClient

    public var currentProviderID: UInt32
    public var issuerEventID: UInt32
    public var tariffType: UInt8
    public var proposedProviderID: UInt32
    /// UTC; 0 means now.
    public var changeTime: UInt32
    /// Bitmap32.
    public var changeControl: UInt32
    /// Octet string; the invalid string (0xFF) decodes as empty.
    public var proposedProviderName: [UInt8]
    /// Octet string; the invalid string (0xFF) decodes as empty.
    public var proposedProviderContactDetails: [UInt8]

    public init(
        currentProviderID: UInt32, issuerEventID: UInt32, tariffType: UInt8, proposedProviderID: UInt32,
        changeTime: UInt32, changeControl: UInt32, proposedProviderName: [UInt8], proposedProviderContactDetails: [UInt8]
    ) {
        self.currentProviderID = currentProviderID
        self.issuerEventID = issuerEventID
        self.tariffType = tariffType
        self.proposedProviderID = proposedProviderID
        self.changeTime = changeTime
        self.changeControl = changeControl
        self.proposedProviderName = proposedProviderName
        self.proposedProviderContactDetails = proposedProviderContactDetails
    }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        currentProviderID = try reader.u32le("current provider ID")
        issuerEventID = try reader.u32le("issuer event ID")
        tariffType = try reader.u8("tariff type")
        proposedProviderID = try reader.u32le("proposed provider ID")
        changeTime = try reader.u32le("provider change implementation time")
        changeControl = try reader.u32le("provider change control")
        proposedProviderName = Array(try reader.lengthPrefixed("proposed provider name") ?? [])
        proposedProviderContactDetails = Array(try reader.lengthPrefixed("proposed provider contact details") ?? [])
    }

    public func encode(into writer: inout WireWriter) {
        writer.u32le(currentProviderID)
        writer.u32le(issuerEventID)
        writer.u8(tariffType)
        writer.u32le(proposedProviderID)
        writer.u32le(changeTime)
        writer.u32le(changeControl)
        writer.lengthPrefixed(proposedProviderName)
        writer.lengthPrefixed(proposedProviderContactDetails)
    }
}
