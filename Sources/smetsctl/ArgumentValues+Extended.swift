import ArgumentParser
import SMETSCore

/// Transforms for the asset, tenancy, supplier and HAN commands' values (see ``ArgumentValues``).
extension ArgumentValues {
    /// `n` hex digits (an optional `0x` before them), returned in upper case.
    static func hexDigits(_ text: String, count: Int, what: String, example: String) throws -> String {
        let digits = text.hasPrefix("0x") || text.hasPrefix("0X") ? String(text.dropFirst(2)) : text
        guard digits.count == count, digits.allSatisfy(\.isHexDigit) else {
            throw ValidationError("'\(text)' is not \(what); write \(count) hex digits such as \(example)")
        }
        return digits.uppercased()
    }

    @Sendable static func firmwareVersion(_ text: String) throws -> String {
        try hexDigits(text, count: 8, what: "a firmware version", example: "01020300")
    }

    @Sendable static func manufacturerID(_ text: String) throws -> String {
        try hexDigits(text, count: 4, what: "a manufacturer ID", example: "1234")
    }

    @Sendable static func providerID(_ text: String) throws -> String {
        try hexDigits(text, count: 8, what: "a supplier (provider) ID", example: "0000ABCD")
    }

    @Sendable static func cluster(_ text: String) throws -> String {
        try hexDigits(text, count: 4, what: "a ZCL cluster ID", example: "0703 (Messaging) or 0705 (Prepayment)")
    }

    @Sendable static func region(_ text: String) throws -> CSPRegion {
        guard let region = CSPRegion(text: text) else {
            throw ValidationError("'\(text)' is not a CSP region; use one of \(CSPRegion.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return region
    }

    /// A ZCL frame in hex, header and payload: an even number of hex digits, at least 3 bytes;
    /// spaces and colons between bytes are dropped. Returned in upper case.
    @Sendable static func zclHex(_ text: String) throws -> String {
        let digits = String(text.filter { $0 != " " && $0 != ":" })
        guard digits.count % 2 == 0, digits.count >= 6, digits.allSatisfy(\.isHexDigit) else {
            throw ValidationError("'\(text)' is not a ZCL frame in hex; write the header and payload bytes, at least 3, e.g. 19010000")
        }
        guard digits.count <= 8_000 else { throw ValidationError("the ZCL frame is longer than 4000 bytes") }
        return digits.uppercased()
    }

    /// A tenancy change control bitmap: decimal (26368) or hex with 0x (0x6700), 32 bits.
    @Sendable static func tenancyControl(_ text: String) throws -> UInt32 {
        let value = text.hasPrefix("0x") || text.hasPrefix("0X") ? UInt32(text.dropFirst(2), radix: 16) : UInt32(text)
        guard let value else {
            throw ValidationError("'\(text)' is not a tenancy change control bitmap; write a 32-bit number such as 26368 or 0x6700")
        }
        return value
    }
}

/// The occupant-data categories a Change of Tenancy may clear, by the names `--clear` takes.
enum TenancyCategories {
    /// Short name, the API's category name, and the control bit (docs/tenancy.md).
    static let all: [(name: String, category: DataCategory)] = [
        ("consumption", .consumptionHistory), ("consumer", .consumerData), ("supplier", .supplierMessages),
        ("topups", .topUpLog), ("debt", .debtLog),
    ]

    static var names: String { all.map(\.name).joined(separator: ",") }

    /// The bitmap for a comma-separated list of names (short or API names, or `all`).
    @Sendable static func bitmap(_ text: String) throws -> UInt32 {
        var bitmap: UInt32 = 0
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let name = String(part).trimmingWhitespace().lowercased()
            if name == "all" {
                bitmap |= TenancyRules.clearAllOccupantData
                continue
            }
            guard let entry = all.first(where: { $0.name == name || $0.category.rawValue.lowercased() == name }) else {
                throw ValidationError("'\(part)' is not a category to clear; use \(names) (or all), separated by commas")
            }
            bitmap |= 1 << UInt32(entry.category.tenancyControlBit)
        }
        return bitmap
    }

    /// The short names of the categories `control` selects, e.g. `consumption, supplier`.
    static func describe(_ control: UInt32) -> String {
        let names = all.filter { control & (1 << UInt32($0.category.tenancyControlBit)) != 0 }.map(\.name)
        return names.isEmpty ? "nothing" : names.joined(separator: ", ")
    }
}
