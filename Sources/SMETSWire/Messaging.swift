/// Messaging 0x0703, server to client 0x00: show a supplier message.
public struct DisplayMessage: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.messaging
    public static let commandID = MessagingCommandID.displayMessage
    public static let direction = ZCLDirection.serverToClient

    /// `durationMinutes` meaning "until changed or cancelled".
    public static let untilChanged: UInt16 = 0xFFFF

    public var messageID: UInt32
    /// Bitmap: transmission, importance, confirmation required.
    public var messageControl: UInt8
    /// UTC; 0 means now.
    public var startTime: UInt32
    public var durationMinutes: UInt16
    /// Nil for ZCL's invalid string; decoding repairs invalid UTF-8 (``ZCLString/decode(_:)``),
    /// encoding cuts to 254 bytes.
    public var message: String?
    /// Absent in senders older than SE 1.2.
    public var extendedControl: UInt8?

    public init(
        messageID: UInt32, messageControl: UInt8 = 0, startTime: UInt32 = 0,
        durationMinutes: UInt16 = DisplayMessage.untilChanged, message: String?, extendedControl: UInt8? = nil
    ) {
        self.messageID = messageID
        self.messageControl = messageControl
        self.startTime = startTime
        self.durationMinutes = durationMinutes
        self.message = message
        self.extendedControl = extendedControl
    }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        messageID = try reader.u32le("message ID")
        messageControl = try reader.u8("message control")
        startTime = try reader.u32le("start time")
        durationMinutes = try reader.u16le("duration in minutes")
        message = try reader.lengthPrefixed("message").map(ZCLString.decode)
        extendedControl = reader.isAtEnd ? nil : try reader.u8("extended message control")
    }

    public func encode(into writer: inout WireWriter) {
        writer.u32le(messageID)
        writer.u8(messageControl)
        writer.u32le(startTime)
        writer.u16le(durationMinutes)
        if let message { writer.lengthPrefixed(ZCLString.utf8(message)) } else { writer.invalidString() }
        if let extendedControl { writer.u8(extendedControl) }
    }
}

/// Messaging 0x0703, server to client 0x01: withdraw one message.
public struct CancelMessage: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.messaging
    public static let commandID = MessagingCommandID.cancelMessage
    public static let direction = ZCLDirection.serverToClient

    public var messageID: UInt32
    public var messageControl: UInt8

    public init(messageID: UInt32, messageControl: UInt8 = 0) {
        self.messageID = messageID
        self.messageControl = messageControl
    }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        messageID = try reader.u32le("message ID")
        messageControl = try reader.u8("message control")
    }

    public func encode(into writer: inout WireWriter) {
        writer.u32le(messageID)
        writer.u8(messageControl)
    }
}

/// Messaging 0x0703, server to client 0x03: withdraw every message.
public struct CancelAllMessages: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.messaging
    public static let commandID = MessagingCommandID.cancelAllMessages
    public static let direction = ZCLDirection.serverToClient

    /// UTC; 0 means now.
    public var implementationTime: UInt32

    public init(implementationTime: UInt32 = 0) { self.implementationTime = implementationTime }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        implementationTime = try reader.u32le("implementation time")
    }

    public func encode(into writer: inout WireWriter) {
        writer.u32le(implementationTime)
    }
}

/// Messaging 0x0703, client to server 0x00: ask for the current message; no payload.
public struct GetLastMessage: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.messaging
    public static let commandID = MessagingCommandID.getLastMessage
    public static let direction = ZCLDirection.clientToServer

    public init() {}

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {}

    public func encode(into writer: inout WireWriter) {}
}

/// Messaging 0x0703, client to server 0x01: the consumer confirmed a message.
public struct MessageConfirmation: ZCLClusterCommand {
    public static let clusterID = ZCLClusterID.messaging
    public static let commandID = MessagingCommandID.messageConfirmation
    public static let direction = ZCLDirection.clientToServer

    public var messageID: UInt32
    /// UTC.
    public var confirmationTime: UInt32
    /// SE 1.2 and later; bit0 "no", bit1 "yes".
    public var confirmationControl: UInt8?
    /// SE 1.2 and later; only written when ``confirmationControl`` is, since the fields are sequential.
    public var response: [UInt8]?

    public init(messageID: UInt32, confirmationTime: UInt32, confirmationControl: UInt8? = nil, response: [UInt8]? = nil) {
        self.messageID = messageID
        self.confirmationTime = confirmationTime
        self.confirmationControl = confirmationControl
        self.response = response
    }

    public init(decoding payload: ArraySlice<UInt8>) throws(WireError) {
        var reader = WireReader(payload)
        messageID = try reader.u32le("message ID")
        confirmationTime = try reader.u32le("confirmation time")
        confirmationControl = reader.isAtEnd ? nil : try reader.u8("message confirmation control")
        // The invalid string (0xFF) reads as no response, the same as an absent one.
        response = reader.isAtEnd ? nil : try reader.lengthPrefixed("message response").map(Array.init)
    }

    public func encode(into writer: inout WireWriter) {
        writer.u32le(messageID)
        writer.u32le(confirmationTime)
        guard let confirmationControl else { return }
        writer.u8(confirmationControl)
        if let response { writer.lengthPrefixed(response) }
    }
}
