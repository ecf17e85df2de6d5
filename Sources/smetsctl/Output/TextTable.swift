/// Rows of text in aligned columns under a header row, for terminals and for `grep`/`awk`.
///
/// Columns are separated by two spaces and padded to the widest cell (counted in characters);
/// the last column is not padded, so lines carry no trailing spaces.
struct TextTable {
    var headers: [String]
    var rows: [[String]] = []

    init(headers: [String], rows: [[String]] = []) {
        self.headers = headers
        self.rows = rows
    }

    /// The table as lines ending in `\n`; with `emphasiseHeader` the header is bold (ANSI).
    func render(emphasiseHeader: Bool = false) -> String {
        let columnCount = max(headers.count, rows.map(\.count).max() ?? 0)
        var widths = [Int](repeating: 0, count: columnCount)
        for row in [headers] + rows {
            for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var text = ""
            for column in 0..<columnCount {
                let cell = column < cells.count ? cells[column] : ""
                if column > 0 { text += "  " }
                text += cell
                if column < columnCount - 1 {
                    text += String(repeating: " ", count: widths[column] - cell.count)
                }
            }
            while text.hasSuffix(" ") { text.removeLast() }
            return text
        }
        var output = ""
        let header = line(headers)
        output += emphasiseHeader ? "\u{1B}[1m\(header)\u{1B}[0m\n" : "\(header)\n"
        for row in rows { output += line(row) + "\n" }
        return output
    }
}

/// Labelled values, one a line, values aligned: the form `status` and `devices show` print.
struct KeyValueList {
    var pairs: [(label: String, value: String)] = []

    mutating func add(_ label: String, _ value: String) { pairs.append((label, value)) }

    func render(indent: Int = 0) -> String {
        let width = pairs.map(\.label.count).max() ?? 0
        let prefix = String(repeating: " ", count: indent)
        return pairs.map { pair in
            let padding = String(repeating: " ", count: width - pair.label.count + 2)
            return pair.value.isEmpty ? "\(prefix)\(pair.label)\n" : "\(prefix)\(pair.label)\(padding)\(pair.value)\n"
        }.joined()
    }
}
