/// Maps one feature's values to at most 255 bins, equal-count over the training data.
///
/// `upperBounds[b]` is the largest value in bin b: a value v lands in the first bin whose upper
/// bound is ≥ v, and the last bound is +∞. Bounds sit midway between neighbouring distinct
/// training values, so a split "bin ≤ b" is the test "v ≤ upperBounds[b]" that the model stores.
public struct FeatureBins: Sendable, Equatable {
    /// Upper bound of each bin, ascending; the last is +∞.
    public let upperBounds: [Double]

    /// Number of bins.
    public var count: Int { upperBounds.count }

    public init(upperBounds: [Double]) {
        precondition(!upperBounds.isEmpty && upperBounds.last == .infinity)
        self.upperBounds = upperBounds
    }

    /// Bins a feature from its training values.
    ///
    /// With at most `maxBin` distinct values each gets its own bin (values with fewer than
    /// `minDataInBin` rows share one with their neighbours). Otherwise bins are filled
    /// greedily to about (rows left) / (bins left) rows each, never splitting a distinct value,
    /// and with at least `minDataInBin` rows (so a lone outlier does not get a bin of its own).
    public init(fitting values: [Double], maxBin: Int, minDataInBin: Int = 3) {
        precondition(maxBin >= 2 && maxBin <= 255)
        let sorted = values.sorted()
        var distinct: [Double] = []
        var counts: [Int] = []
        for v in sorted {
            if let last = distinct.last, last == v {
                counts[counts.count - 1] += 1
            } else {
                distinct.append(v)
                counts.append(1)
            }
        }
        guard distinct.count > 1 else {
            upperBounds = [.infinity]
            return
        }
        var bounds: [Double] = []
        if distinct.count <= maxBin {
            // One bin per distinct value, merging values too rare to stand alone (as LightGBM does).
            var filled = 0
            for i in 0..<(distinct.count - 1) {
                filled += counts[i]
                if filled >= minDataInBin {
                    bounds.append(Self.midpoint(distinct[i], distinct[i + 1]))
                    filled = 0
                }
            }
        } else {
            var rowsLeft = sorted.count
            var binsLeft = maxBin
            var filled = 0
            for i in 0..<(distinct.count - 1) {
                filled += counts[i]
                let target = Double(rowsLeft) / Double(binsLeft)
                // Close the bin when it is full enough, or when the next value alone would overfill it.
                let nextOverflows = Double(filled + counts[i + 1]) > target * 1.5 && filled >= minDataInBin
                if (Double(filled) >= target && filled >= minDataInBin) || nextOverflows {
                    bounds.append(Self.midpoint(distinct[i], distinct[i + 1]))
                    rowsLeft -= filled
                    binsLeft -= 1
                    filled = 0
                    if binsLeft == 1 { break }
                }
            }
        }
        bounds.append(.infinity)
        upperBounds = bounds
    }

    /// The bin of a value: the first whose upper bound is ≥ v (NaN goes to the last bin).
    @inlinable
    public func bin(_ v: Double) -> UInt8 {
        var lo = 0
        var hi = upperBounds.count - 1
        while lo < hi {
            let mid = (lo + hi) >> 1
            if v <= upperBounds[mid] { hi = mid } else { lo = mid + 1 }
        }
        return UInt8(lo)
    }

    /// A threshold strictly between a and b (a < b) that stays exact for close neighbours.
    static func midpoint(_ a: Double, _ b: Double) -> Double {
        let m = a + (b - a) / 2
        return m < b ? m : a
    }
}

/// Rows binned, row-major: row r's bin for feature f is `bins[r * featureCount + f]`, so
/// building a histogram reads one short run of bytes per row. Owns its memory so the hot loops
/// can hold plain pointers to it.
final class BinnedRows {
    let featureCount: Int
    let rowCount: Int
    let binsPointer: UnsafeMutablePointer<UInt8>
    /// The same bins column-major (`columnBins[f * rowCount + r]`): partitioning a leaf on one
    /// feature reads this 1-byte-per-row column instead of striding through the rows.
    let columnBins: UnsafeMutablePointer<UInt8>
    /// Offset of each feature's first bin in a histogram (prefix sums of bin counts).
    let offsets: [UInt32]
    let offsetsPointer: UnsafeMutablePointer<UInt32>
    /// Total bins across features: the length of a histogram in (gradient, count) pairs.
    let totalBins: Int

    /// Bins `rows` of `columns` (one array per feature) with the fitted bins of each feature.
    init(columns: [[Double]], rows: [Int], featureBins: [FeatureBins]) {
        featureCount = columns.count
        rowCount = rows.count
        binsPointer = .allocate(capacity: max(1, rows.count * columns.count))
        columnBins = .allocate(capacity: max(1, rows.count * columns.count))
        for (f, column) in columns.enumerated() {
            let mapper = featureBins[f]
            for (i, row) in rows.enumerated() {
                let bin = mapper.bin(column[row])
                binsPointer[i * featureCount + f] = bin
                columnBins[f * rows.count + i] = bin
            }
        }
        var offsets: [UInt32] = []
        var total = 0
        for mapper in featureBins {
            offsets.append(UInt32(total))
            total += mapper.count
        }
        self.offsets = offsets
        offsetsPointer = .allocate(capacity: max(1, offsets.count))
        offsetsPointer.initialize(from: offsets, count: offsets.count)
        totalBins = total
    }

    deinit {
        binsPointer.deallocate()
        columnBins.deallocate()
        offsetsPointer.deallocate()
    }

    /// The bin of `feature` in `row`.
    @inline(__always)
    subscript(row: Int, feature: Int) -> UInt8 { binsPointer[row * featureCount + feature] }
}
