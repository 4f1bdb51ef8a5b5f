/// The index of a sealed segment, kept as a record in the artifact store next to its blob.
public struct SegmentIndex: Sendable, Hashable, Codable {
    /// The segment's id (the record id).
    public var id: String
    /// First and last call time, milliseconds since 1970.
    public var fromMilliseconds: Int64
    public var toMilliseconds: Int64
    public var count: Int
    /// Every principal with a call in the segment, sorted.
    public var principals: [String]
    /// Calls per method.
    public var methods: [String: Int]
    /// The segment file's size (compressed records).
    public var bytes: Int
    /// The blob holding the segment file.
    public var blobs: [String]

    init(id: String) {
        self.id = id
        fromMilliseconds = .max
        toMilliseconds = .min
        count = 0
        principals = []
        methods = [:]
        bytes = 0
        blobs = []
    }

    mutating func add(_ row: GuestbookRow, principalSet: inout Set<String>) {
        fromMilliseconds = min(fromMilliseconds, row.atMilliseconds)
        toMilliseconds = max(toMilliseconds, row.atMilliseconds)
        count += 1
        if principalSet.insert(row.principal).inserted { principals = principalSet.sorted() }
        methods[row.method, default: 0] += 1
    }

    enum CodingKeys: String, CodingKey {
        case id, count, principals, methods, bytes, blobs
        case fromMilliseconds = "from_ms"
        case toMilliseconds = "to_ms"
    }
}
