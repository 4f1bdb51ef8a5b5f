import CLoupeData
import Zstd

/// The data that ships inside `loupe`: the classic diamonds set (53,940 rows, ggplot2 / plotnine,
/// MIT licence; see Sources/CLoupeData/bundled/PROVENANCE.md).
public enum BundledData {
    /// The number of data rows in the bundled CSV.
    public static let diamondsRowCount = 53_940

    /// The bundled diamonds CSV, decompressed (about 2.7 MB).
    public static func diamondsCSV() -> [UInt8] {
        let raw = UnsafeRawBufferPointer(start: loupe_bundled_diamonds_zst(), count: loupe_bundled_diamonds_zst_size())
        do {
            return try Zstd.decompress(raw)
        } catch {
            // The frame is linked into the binary; failing here means the build itself is broken.
            fatalError("bundled diamonds data is corrupt: \(error)")
        }
    }
}
