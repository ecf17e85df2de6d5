/// Zigbee profile IDs.
public enum ZCLProfileID {
    /// Smart Energy, the profile of every HAN link DATA frame.
    public static let smartEnergy: UInt16 = 0x0109
}

/// The clusters the emulated devices serve or use.
public enum ZCLClusterID {
    public static let basic: UInt16 = 0x0000
    public static let otaUpgrade: UInt16 = 0x0019
    public static let metering: UInt16 = 0x0702
    public static let messaging: UInt16 = 0x0703
    public static let prepayment: UInt16 = 0x0705
    public static let deviceManagement: UInt16 = 0x0708
}

/// Basic cluster (0x0000) attributes, served by every device.
public enum BasicAttribute {
    public static let zclVersion: UInt16 = 0x0000
    public static let hwVersion: UInt16 = 0x0003
    /// Character string.
    public static let manufacturerName: UInt16 = 0x0004
    /// Character string.
    public static let modelIdentifier: UInt16 = 0x0005
    public static let dateCode: UInt16 = 0x0006
    public static let powerSource: UInt16 = 0x0007
    /// Character string: the firmware version as 8 uppercase hex digits, equal to WELCOME's file version.
    public static let swBuildID: UInt16 = 0x4000
}

/// OTA Upgrade cluster (0x0019) client attributes, held by the device being upgraded.
public enum OTAAttribute {
    public static let upgradeServerID: UInt16 = 0x0000
    public static let fileOffset: UInt16 = 0x0001
    public static let currentFileVersion: UInt16 = 0x0002
    public static let downloadedFileVersion: UInt16 = 0x0004
    /// enum8: 0 normal, 1 downloading, 2 download complete, 3 waiting to upgrade.
    public static let imageUpgradeStatus: UInt16 = 0x0006
    public static let manufacturerID: UInt16 = 0x0007
    public static let imageTypeID: UInt16 = 0x0008
}

/// Metering cluster (0x0702) server attributes.
public enum MeteringAttribute {
    /// uint48.
    public static let currentSummationDelivered: UInt16 = 0x0000
    public static let status: UInt16 = 0x0200
    public static let unitOfMeasure: UInt16 = 0x0300
    /// uint24.
    public static let multiplier: UInt16 = 0x0301
    /// uint24.
    public static let divisor: UInt16 = 0x0302
    public static let meteringDeviceType: UInt16 = 0x0306
    public static let meterSerialNumber: UInt16 = 0x0308
    /// int24.
    public static let instantaneousDemand: UInt16 = 0x0400
}

/// Prepayment cluster (0x0705) server attributes.
public enum PrepaymentAttribute {
    /// int32.
    public static let creditRemaining: UInt16 = 0x0001
    public static let emergencyCreditRemaining: UInt16 = 0x0002
    public static let accumulatedDebt: UInt16 = 0x0005
}

/// Messaging cluster (0x0703) command IDs; the two directions number independently.
public enum MessagingCommandID {
    public static let displayMessage: UInt8 = 0x00
    public static let cancelMessage: UInt8 = 0x01
    public static let cancelAllMessages: UInt8 = 0x03
    public static let getLastMessage: UInt8 = 0x00
    public static let messageConfirmation: UInt8 = 0x01
}

/// Device Management cluster (0x0708) command IDs, server to client.
public enum DeviceManagementCommandID {
    public static let publishChangeOfTenancy: UInt8 = 0x00
    public static let publishChangeOfSupplier: UInt8 = 0x01
}

/// Prepayment cluster (0x0705) command IDs; the two directions number independently.
public enum PrepaymentCommandID {
    public static let consumerTopUp: UInt8 = 0x04
    public static let getTopUpLog: UInt8 = 0x08
    public static let getDebtRepaymentLog: UInt8 = 0x0A
    public static let consumerTopUpResponse: UInt8 = 0x03
    public static let publishTopUpLog: UInt8 = 0x05
    public static let publishDebtLog: UInt8 = 0x06
}

/// OTA Upgrade cluster (0x0019) command IDs.
public enum OTACommandID {
    public static let imageNotify: UInt8 = 0x00
    public static let queryNextImageRequest: UInt8 = 0x01
    public static let queryNextImageResponse: UInt8 = 0x02
    public static let imageBlockRequest: UInt8 = 0x03
    public static let imageBlockResponse: UInt8 = 0x05
    public static let upgradeEndRequest: UInt8 = 0x06
    public static let upgradeEndResponse: UInt8 = 0x07
}
