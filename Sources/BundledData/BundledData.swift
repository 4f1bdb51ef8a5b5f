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

    /// Where the bundled data comes from and under which licence.
    public static let provenance = """
        diamonds.csv: 53,940 round-cut diamonds (carat, cut, color, clarity, depth, table, price, x, y, z;
        prices in 2008 US dollars). The `diamonds` data of the R package ggplot2 (MIT licence), taken
        unchanged from the copy the Python package plotnine 0.15.9 ships as plotnine/data/diamonds.csv
        (MIT licence). SHA-256 of the CSV: 9574730b03aba241d899c4a97511c5061b19358fab89510774fb6c24168345c4.
        Known dirt: 20 rows with a zero in x, y or z; a few impossible dimensions (y = 58.9 mm, z = 31.8 mm).
        """
}
