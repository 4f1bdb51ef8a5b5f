/// Builds RFC 4180 CSV bytes: fields quoted only when they must be (a comma, quote, line
/// break, or leading/trailing space or tab), quotes doubled, LF line endings.
struct CSVWriter {
    private(set) var bytes: [UInt8] = []

    init(reservingCapacity capacity: Int = 0) {
        bytes.reserveCapacity(capacity)
    }

    /// Appends one record.
    mutating func append(record fields: [String]) {
        for (i, field) in fields.enumerated() {
            if i > 0 { bytes.append(Byte.comma) }
            append(field: field)
        }
        bytes.append(Byte.lf)
    }

    /// Appends one field (the caller writes separators and line ends).
    mutating func append(field: String) {
        let utf8 = field.utf8
        let needsQuotes = utf8.contains { $0 == Byte.comma || $0 == Byte.quote || $0 == Byte.lf || $0 == Byte.cr }
            || utf8.first == Byte.space || utf8.first == Byte.tab
            || utf8.last == Byte.space || utf8.last == Byte.tab
        guard needsQuotes else {
            bytes.append(contentsOf: utf8)
            return
        }
        bytes.append(Byte.quote)
        for byte in utf8 {
            if byte == Byte.quote { bytes.append(Byte.quote) }
            bytes.append(byte)
        }
        bytes.append(Byte.quote)
    }

    /// Appends raw bytes that need no quoting (numbers, grade labels, separators).
    mutating func append(raw text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    mutating func append(byte: UInt8) {
        bytes.append(byte)
    }
}
