/// An RFC 4180 record scanner over bytes in memory.
///
/// It walks the buffer once and exposes one record at a time as byte spans, so the caller
/// can parse numbers straight from the input without making a `String` per field. Only a
/// quoted field that contains an escaped quote (`""`) is copied, unescaped, into a scratch
/// buffer that is reused from record to record.
///
/// What it accepts:
/// - fields separated by `,`; records ended by LF, CRLF or a lone CR (or the end of input);
/// - quoted fields (`"…"`) holding commas, line breaks and `""` for a quote;
/// - a UTF-8 byte order mark at the very start (skipped);
/// - empty lines, and lines of only spaces and tabs, outside quoted fields: skipped and
///   counted in `emptyLinesSkipped`;
/// - a `"` inside an unquoted field is an ordinary character (`ab"c` is the text `ab"c`);
/// - spaces and tabs between a closing quote and the next separator are ignored.
///
/// What makes a record malformed (reported in `problem`, never a crash):
/// - text other than spaces after a closing quote (`"abc"def`): `.textAfterClosingQuote`;
/// - a quote that is still open at the end of the input: `.unterminatedQuote`. The record
///   then ends at the end of the physical line where the quote opened, and scanning resumes
///   on the next line, so one stray quote does not swallow the rest of the file.
///
/// The scanner borrows `bytes`: use it only while the buffer is alive.
struct CSVScanner {
    /// Where one field's bytes are: in the input, or (escaped quoted fields) in `scratch`.
    struct Span {
        var start: Int
        var end: Int
        var inScratch: Bool
    }

    /// Why a record is malformed.
    enum Problem: Equatable {
        /// A quote opened in field `field` (0-based) was never closed.
        case unterminatedQuote(field: Int)
        /// Characters follow the closing quote of field `field` (0-based).
        case textAfterClosingQuote(field: Int)
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var position: Int

    /// The fields of the current record.
    private(set) var fields: [Span] = []
    /// Unescaped bytes of quoted fields that contained `""`.
    private(set) var scratch: [UInt8] = []
    /// Why the current record is malformed, or nil.
    private(set) var problem: Problem?
    /// The 1-based physical line on which the current record starts.
    private(set) var recordLine = 0
    /// Empty (or blank) lines skipped so far, outside quoted fields.
    private(set) var emptyLinesSkipped = 0
    /// The 1-based physical line at the scan position.
    private var line = 1

    /// A scanner positioned at the start of `bytes`, past a UTF-8 byte order mark if any.
    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        position = 0
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { position = 3 }
        fields.reserveCapacity(16)
    }

    /// Whether the input starts with a UTF-8 byte order mark.
    var hadByteOrderMark: Bool {
        bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF
    }

    /// Moves to the next record. Returns false at the end of the input.
    mutating func next() -> Bool {
        fields.removeAll(keepingCapacity: true)
        scratch.removeAll(keepingCapacity: true)
        problem = nil
        skipEmptyLines()
        guard position < bytes.count else { return false }
        recordLine = line
        while true {
            let fieldIndex = fields.count
            let fieldStart = position
            if bytes[position] == Byte.quote {
                if !scanQuotedField() {
                    recoverFromUnterminatedQuote(field: fieldIndex)
                    return true
                }
            } else {
                scanUnquotedField()
            }
            // `position` is now at a separator, a line break or the end.
            guard position < bytes.count else { return true }
            let byte = bytes[position]
            if byte == Byte.comma {
                position += 1
                if position == bytes.count {
                    fields.append(Span(start: position, end: position, inScratch: false))
                    return true
                }
                continue
            }
            if byte == Byte.lf || byte == Byte.cr {
                consumeLineBreak()
                return true
            }
            // Text after a closing quote: the field keeps its raw bytes, quotes and all, up to
            // the next separator, and the record is flagged.
            if problem == nil { problem = .textAfterClosingQuote(field: fieldIndex) }
            while position < bytes.count {
                let b = bytes[position]
                if b == Byte.comma || b == Byte.lf || b == Byte.cr { break }
                position += 1
            }
            fields[fieldIndex] = Span(start: fieldStart, end: position, inScratch: false)
            if position < bytes.count, bytes[position] == Byte.comma {
                position += 1
                if position == bytes.count {
                    fields.append(Span(start: position, end: position, inScratch: false))
                    return true
                }
                continue
            }
            if position < bytes.count { consumeLineBreak() }
            return true
        }
    }

    /// Calls `body` with the bytes of field `index` of the current record.
    @inline(__always)
    func withField<R>(_ index: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        let span = fields[index]
        if span.inScratch {
            return scratch.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[span.start..<span.end])) }
        }
        return body(UnsafeBufferPointer(rebasing: bytes[span.start..<span.end]))
    }

    /// The text of field `index` (invalid UTF-8 is repaired with U+FFFD).
    func string(_ index: Int) -> String {
        withField(index) { String(decoding: $0, as: UTF8.self) }
    }

    /// The text of every field of the current record.
    func strings() -> [String] {
        (0..<fields.count).map(string)
    }

    // MARK: - Scanning

    private mutating func skipEmptyLines() {
        while position < bytes.count {
            var i = position
            while i < bytes.count, bytes[i] == Byte.space || bytes[i] == Byte.tab { i += 1 }
            if i == bytes.count {
                // Trailing blanks with no line break: a blank last line, if there was anything.
                if i > position { emptyLinesSkipped += 1 }
                position = i
                return
            }
            guard bytes[i] == Byte.lf || bytes[i] == Byte.cr else { return }
            position = i
            consumeLineBreak()
            emptyLinesSkipped += 1
        }
    }

    /// Consumes LF, CRLF or CR at `position` and counts the line.
    @inline(__always)
    private mutating func consumeLineBreak() {
        if bytes[position] == Byte.cr, position + 1 < bytes.count, bytes[position + 1] == Byte.lf {
            position += 2
        } else {
            position += 1
        }
        line += 1
    }

    @inline(__always)
    private mutating func scanUnquotedField() {
        let start = position
        var i = position
        let end = bytes.count
        while i < end {
            let b = bytes[i]
            if b == Byte.comma || b == Byte.lf || b == Byte.cr { break }
            i += 1
        }
        fields.append(Span(start: start, end: i, inScratch: false))
        position = i
    }

    /// Scans a quoted field starting at the opening quote. Returns false if the quote never
    /// closes (`position` is then unchanged).
    ///
    /// Scanning to the end of the input for an unterminated quote happens at most once per
    /// input: if it happens, every later run of quotes has even length, so a later field that
    /// starts with a quote is `""…` and closes at once.
    private mutating func scanQuotedField() -> Bool {
        let limit = bytes.count - 1
        var segmentStart = position + 1
        var i = segmentStart
        var usedScratch = false
        var scratchStart = 0
        var linesInField = 0
        while true {
            // Find the next quote, counting line breaks on the way.
            while i <= limit, bytes[i] != Byte.quote {
                let b = bytes[i]
                if b == Byte.lf {
                    linesInField += 1
                } else if b == Byte.cr, i + 1 >= bytes.count || bytes[i + 1] != Byte.lf {
                    linesInField += 1
                }
                i += 1
            }
            guard i <= limit else { return false }
            // bytes[i] is a quote: either `""` (an escaped quote) or the closing quote.
            if i + 1 < bytes.count, bytes[i + 1] == Byte.quote {
                if !usedScratch {
                    usedScratch = true
                    scratchStart = scratch.count
                }
                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[segmentStart...i]))
                i += 2
                segmentStart = i
                continue
            }
            if usedScratch {
                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[segmentStart..<i]))
                fields.append(Span(start: scratchStart, end: scratch.count, inScratch: true))
            } else {
                fields.append(Span(start: segmentStart, end: i, inScratch: false))
            }
            line += linesInField
            position = i + 1
            // Spaces and tabs between the closing quote and the separator are ignored.
            while position < bytes.count, bytes[position] == Byte.space || bytes[position] == Byte.tab {
                position += 1
            }
            return true
        }
    }

    /// Ends the current record at the end of the physical line holding the quote that opened
    /// field `field` and never closed; the field's text is the rest of that line.
    private mutating func recoverFromUnterminatedQuote(field: Int) {
        problem = .unterminatedQuote(field: field)
        let contentStart = position + 1
        var i = contentStart
        while i < bytes.count, bytes[i] != Byte.lf, bytes[i] != Byte.cr { i += 1 }
        fields.append(Span(start: contentStart, end: i, inScratch: false))
        position = i
        if position < bytes.count { consumeLineBreak() }
    }
}

/// ASCII bytes the reader cares about.
enum Byte {
    static let comma = UInt8(ascii: ",")
    static let quote = UInt8(ascii: "\"")
    static let lf = UInt8(ascii: "\n")
    static let cr = UInt8(ascii: "\r")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
}

/// A scanner borrows its caller's buffer and is used on one thread.
@available(*, unavailable)
extension CSVScanner: Sendable {}

/// A small CSV file's records as text, for the files beside the training data (outcomes):
/// the same RFC 4180 rules as the cleaner's scanner.
public enum CSVText {
    /// One record: its fields, the line it starts on, and why it is malformed (nil when fine).
    public struct Record: Sendable {
        public var fields: [String]
        public var line: Int
        public var problem: String?
    }

    /// Every record of `bytes`, the header first.
    public static func records(_ bytes: [UInt8]) -> [Record] {
        bytes.withUnsafeBufferPointer { buffer in
            var scanner = CSVScanner(buffer)
            var records: [Record] = []
            while scanner.next() {
                var problem: String?
                switch scanner.problem {
                case .unterminatedQuote(let field): problem = "a quote opened in field \(field + 1) is never closed"
                case .textAfterClosingQuote(let field): problem = "text follows the closing quote of field \(field + 1)"
                case nil: break
                }
                records.append(Record(fields: scanner.strings(), line: scanner.recordLine, problem: problem))
            }
            return records
        }
    }
}
