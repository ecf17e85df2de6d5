/// The kinds of occupant data a display device (PPMID, IHD) may keep, and the Change of Tenancy
/// control bit that clears each (ZCL Device Management, tenancy change control bitmap). SECMP0056
/// requires historic consumption and supplier messages to be cleared; top-up history and
/// debt-recovery data are functions some devices add beyond SMETS, and clearing them is "a matter for
/// the Supplier and its Device Manufacturer": a model says what it keeps and what it clears.
public enum DataCategory: String, CaseIterable, Sendable, Codable, Hashable, CustomStringConvertible {
    /// Historic consumption the device displays (bit 8, clear historical load profile).
    case consumptionHistory
    /// Data the consumer entered on the device, e.g. budgets and alerts (bit 9, clear IHD data (consumer)).
    case consumerData
    /// Messages from the supplier (bit 10, clear IHD data (supplier)).
    case supplierMessages
    /// Top-up history, beyond SMETS (bit 13, clear transaction log).
    case topUpLog
    /// Debt-recovery data, beyond SMETS (bit 14, clear prepayment log).
    case debtLog

    public var tenancyControlBit: Int {
        switch self {
        case .consumptionHistory: 8
        case .consumerData: 9
        case .supplierMessages: 10
        case .topUpLog: 13
        case .debtLog: 14
        }
    }

    public var description: String { rawValue }
}

/// SECMP0056: what a device clears on Change of Tenancy.
public enum TenancyRules {
    /// The categories that `control` (the PublishChangeOfTenancy bitmap) selects among those the
    /// device clears (a model's `clearsSet`: none before the specification version that brought it).
    public static func categoriesToClear(control: UInt32, keeps: Set<DataCategory>) -> Set<DataCategory> {
        Set(DataCategory.allCases.filter { control & (1 << UInt32($0.tenancyControlBit)) != 0 && keeps.contains($0) })
    }

    /// A meter's share: the copies of the supplier's messages it sent the displays go with bit 10.
    public static func meterCategoriesToClear(control: UInt32) -> Set<DataCategory> {
        control & (1 << UInt32(DataCategory.supplierMessages.tenancyControlBit)) != 0 ? [.supplierMessages] : []
    }

    /// The bitmap that selects every category SECMP0056 names: consumption, consumer and supplier
    /// data, and the transaction and prepayment logs.
    public static let clearAllOccupantData: UInt32 = DataCategory.allCases.reduce(0) { $0 | (1 << UInt32($1.tenancyControlBit)) }
}
