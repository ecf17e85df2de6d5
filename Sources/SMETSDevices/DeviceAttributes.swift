import SMETSCore
import SMETSWire

/// The attributes a device serves from what it is and what it runs: Basic (identity), OTA Upgrade
/// (client state) and Metering (consumption from the load profile). Prepayment attributes come from
/// the meter's durable balances (``Prepayment``).
///
/// Pure: the executor passes a ``Context`` it reads from memory (no store, no lock held while this
/// runs), so a read on the HAN is answered on the event loop.
public enum DeviceAttributes {
    /// The device's OTA client state, as its attributes show it.
    public struct OTAState: Sendable, Hashable {
        public var fileOffset: UInt32
        /// nil reads as 0xFFFFFFFF.
        public var downloadedFileVersion: UInt32?
        /// 0 normal, 1 downloading, 2 download complete, 3 waiting to upgrade.
        public var imageUpgradeStatus: UInt8
        public init(fileOffset: UInt32 = 0, downloadedFileVersion: UInt32? = nil, imageUpgradeStatus: UInt8 = 0) {
            self.fileOffset = fileOffset; self.downloadedFileVersion = downloadedFileVersion; self.imageUpgradeStatus = imageUpgradeStatus
        }
    }

    /// What the attributes are computed from.
    public struct Context: Sendable {
        public var device: Device
        /// The device's model; nil when the lab no longer has it (identity attributes read empty).
        public var model: DeviceModel?
        public var ota: OTAState
        /// The meter whose consumption a Metering read serves: the device itself, or for a GPF its
        /// premises' GSME (the GPF mirrors it). Only needed for Metering.
        public var meter: EUI64?
        /// The virtual clock.
        public var now: Timestamp
        /// The current tenancy's start, when it changed: consumption from before it is not served.
        public var tenancyStart: Timestamp?

        public init(device: Device, model: DeviceModel?, ota: OTAState = OTAState(), meter: EUI64? = nil, now: Timestamp, tenancyStart: Timestamp? = nil) {
            self.device = device; self.model = model; self.ota = ota; self.meter = meter; self.now = now; self.tenancyStart = tenancyStart
        }
    }

    /// One record per attribute asked for, in the order asked: its value, or UNSUPPORTED_ATTRIBUTE.
    public static func records(cluster: UInt16, ids: [UInt16], context: Context) -> [ReadAttributesResponse.Record] {
        ids.map { id in
            guard let value = value(cluster: cluster, id: id, context: context) else { return .status(id, .unsupportedAttribute) }
            return .value(id, value)
        }
    }

    /// The value of attribute `id` of `cluster`, or nil when the device does not serve it.
    public static func value(cluster: UInt16, id: UInt16, context: Context) -> ZCLValue? {
        switch cluster {
        case ZCLClusterID.basic: basic(id, context)
        case ZCLClusterID.otaUpgrade: ota(id, context)
        case ZCLClusterID.metering: metering(id, context)
        default: nil
        }
    }

    static func basic(_ id: UInt16, _ context: Context) -> ZCLValue? {
        let model = context.model, device = context.device
        switch id {
        case BasicAttribute.zclVersion: return .uint8(8)
        case BasicAttribute.hwVersion: return .uint8(UInt8(clamping: model?.hardwareVersion ?? 0))
        case BasicAttribute.manufacturerName: return .charString(model?.manufacturer.name ?? "")
        case BasicAttribute.modelIdentifier: return .charString(model?.modelName ?? device.modelKey)
        case BasicAttribute.dateCode: return .charString(model?.dateCode ?? "")
        case BasicAttribute.powerSource: return .enum8(model?.powerSource ?? 1)
        // The firmware the device runs (han-link.md rev 1.1); a fictitious CPL identity lives only
        // in the DCC's inventory.
        case BasicAttribute.swBuildID: return .charString(device.firmwareVersion.hex)
        default: return nil
        }
    }

    static func ota(_ id: UInt16, _ context: Context) -> ZCLValue? {
        let model = context.model, device = context.device, ota = context.ota
        switch id {
        case OTAAttribute.upgradeServerID: return .ieeeAddress(device.hub ?? EUI64(UInt64.max))
        case OTAAttribute.fileOffset: return .uint32(ota.fileOffset)
        case OTAAttribute.currentFileVersion: return .uint32(device.firmwareVersion.rawValue)
        case OTAAttribute.downloadedFileVersion: return .uint32(ota.downloadedFileVersion ?? 0xFFFF_FFFF)
        case OTAAttribute.imageUpgradeStatus: return .enum8(ota.imageUpgradeStatus)
        case OTAAttribute.manufacturerID: return .uint16(model?.manufacturer.numericCode ?? 0)
        case OTAAttribute.imageTypeID: return .uint16(model?.numericImageType ?? 0)
        default: return nil
        }
    }

    /// CurrentDayConsumptionDelivered (uint24).
    public static let currentDayConsumptionDelivered: UInt16 = 0x0401
    /// PreviousDayConsumptionDelivered (uint24).
    public static let previousDayConsumptionDelivered: UInt16 = 0x0403

    static func metering(_ id: UInt16, _ context: Context) -> ZCLValue? {
        let device = context.device, now = context.now, since = context.tenancyStart
        let isGas = device.type == .gsme || device.type == .gpf
        let meter = context.meter ?? device.id
        let meterType: DeviceType = isGas ? .gsme : .esme
        switch id {
        case MeteringAttribute.currentSummationDelivered:
            return .uint48(UInt64(max(0, LoadProfile.cumulative(device: meter, type: meterType, at: now))))
        case MeteringAttribute.status: return .bitmap8(0)
        case MeteringAttribute.unitOfMeasure: return .enum8(isGas ? 0x01 : 0x00)  // m3 or kWh
        case MeteringAttribute.multiplier: return .uint24(1)
        case MeteringAttribute.divisor: return .uint24(1000)  // Wh (or litres) on the wire, kWh (or m3) shown
        case MeteringAttribute.meteringDeviceType: return .bitmap8(isGas ? 0x01 : 0x00)
        case MeteringAttribute.meterSerialNumber: return .octetString(meter.description.utf8.filter { $0 != UInt8(ascii: "-") })
        case MeteringAttribute.instantaneousDemand:
            return .int24(Int32(clamping: LoadProfile.instantaneousDemand(device: meter, type: meterType, at: now)))
        case currentDayConsumptionDelivered:
            // From midnight or the Change of Tenancy, whichever is later.
            let dayStart = max(Timestamp.startOfDay(now.dayNumber), since ?? Timestamp(unixMillis: 0))
            return .uint24(UInt32(clamping: LoadProfile.cumulative(device: meter, type: meterType, at: now)
                    - LoadProfile.cumulative(device: meter, type: meterType, at: dayStart)))
        case previousDayConsumptionDelivered:
            // Of the new occupant only, from the Change of Tenancy on.
            return .uint24(UInt32(clamping: LoadProfile.dailyTotal(device: meter, type: meterType, day: now.dayNumber - 1, since: since)))
        default: return nil
        }
    }
}
