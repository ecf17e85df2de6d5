/// The kinds of occupant data a display device (PPMID, IHD) may keep, and the Change of Tenancy
/// control bit that clears each (ZCL Device Management, tenancy change control bitmap).
public enum DataCategory: String, CaseIterable, Sendable, Codable, Hashable, CustomStringConvertible {
    /// Historic consumption the device displays (bit 8, clear historical load profile).
    case consumptionHistory
    /// Data the consumer entered on the device, e.g. budgets and alerts (bit 9, clear IHD data (consumer)).
    case consumerData
    /// Messages from the supplier (bit 10, clear IHD data (supplier)).
    case supplierMessages
    /// Top-up history (bit 13, clear transaction log).
    case topUpLog
    /// Debt-recovery data (bit 14, clear prepayment log).
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

/// SECMP0056: what a display device clears on Change of Tenancy.
public enum TenancyRules {
    /// The categories that `control` (the PublishChangeOfTenancy bitmap) selects and the model keeps.
    public static func categoriesToClear(control: UInt32, keeps: Set<DataCategory>) -> Set<DataCategory> {
        Set(DataCategory.allCases.filter { control & (1 << UInt32($0.tenancyControlBit)) != 0 && keeps.contains($0) })
    }

    /// The bitmap that selects every category SECMP0056 names: consumption, consumer and supplier
    /// data, and the transaction and prepayment logs.
    public static let clearAllOccupantData: UInt32 = DataCategory.allCases.reduce(0) { $0 | (1 << UInt32($1.tenancyControlBit)) }
}
