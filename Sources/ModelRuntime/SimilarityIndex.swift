import DataCleaning
import DiamondSchema

/// Finds the training diamonds most like a given one: same cut, color and clarity, closest
/// carat. Built once when a model is loaded: rows are grouped by grade triple (5 × 7 × 8
/// groups) and sorted by carat, so a query is a binary search plus a walk outwards.
public struct SimilarityIndex: Sendable {
    /// A training diamond and its price.
    public struct Match: Sendable, Equatable {
        public var diamond: Diamond
        public var price: Double
        /// Distance in carat from the query.
        public var caratDistance: Double
        /// The row in the indexed table (0-based).
        public var row: Int
    }

    private struct Entry: Sendable {
        var carat: Double
        var row: Int32
    }

    private let groups: [[Entry]]
    private let table: DiamondTable

    /// Indexes every row of `table`.
    public init(table: DiamondTable) {
        var groups = [[Entry]](repeating: [], count: Self.groupCount)
        let carat = table[.carat]
        let cut = table[.cut]
        let color = table[.color]
        let clarity = table[.clarity]
        for row in 0..<table.count {
            let g = Self.group(cut: Int(cut[row]), color: Int(color[row]), clarity: Int(clarity[row]))
            groups[g].append(Entry(carat: carat[row], row: Int32(row)))
        }
        // Ties in carat keep table order, so results are deterministic.
        self.groups = groups.map { $0.sorted { ($0.carat, $0.row) < ($1.carat, $1.row) } }
        self.table = table
    }

    /// Number of indexed diamonds.
    public var count: Int { table.count }

    /// Up to `limit` diamonds with the query's grades, nearest carat first; ties in distance
    /// (the same carat, or as far above as below) lower row first.
    public func nearest(to query: Diamond, limit: Int) -> [Match] {
        guard limit > 0 else { return [] }
        let entries = groups[Self.group(cut: Int(query.cut.rawValue), color: Int(query.color.rawValue),
                                        clarity: Int(query.clarity.rawValue))]
        guard !entries.isEmpty else { return [] }
        // First entry with carat >= query.
        var lo = 0
        var hi = entries.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if entries[mid].carat < query.carat { lo = mid + 1 } else { hi = mid }
        }
        // Walk outwards in order of distance, then keep walking while the distance ties the
        // last one taken: the walk meets equal carats below the query in descending row order,
        // so the tied group is sorted by row before the cut at `limit`.
        var left = lo - 1
        var right = lo
        var picked: [(distance: Double, row: Int32)] = []
        picked.reserveCapacity(min(limit, entries.count))
        while left >= 0 || right < entries.count {
            let leftDistance = left >= 0 ? query.carat - entries[left].carat : .infinity
            let rightDistance = right < entries.count ? entries[right].carat - query.carat : .infinity
            let takeLeft = leftDistance <= rightDistance
            let distance = takeLeft ? leftDistance : rightDistance
            if picked.count >= limit, distance > picked[picked.count - 1].distance { break }
            picked.append((distance, takeLeft ? entries[left].row : entries[right].row))
            if takeLeft { left -= 1 } else { right += 1 }
        }
        picked.sort { ($0.distance, $0.row) < ($1.distance, $1.row) }
        return picked.prefix(limit).map { pick in
            let row = Int(pick.row)
            return Match(diamond: table.diamond(at: row), price: table.price[row], caratDistance: pick.distance, row: row)
        }
    }

    private static let groupCount = Cut.allCases.count * Color.allCases.count * Clarity.allCases.count

    private static func group(cut: Int, color: Int, clarity: Int) -> Int {
        (cut * Color.allCases.count + color) * Clarity.allCases.count + clarity
    }
}
