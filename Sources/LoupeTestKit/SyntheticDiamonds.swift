/// Stones whose price follows carat and color, as CSV with the canonical header: the small
/// datasets the server, gateway, request-log, retraining, report and scheduler tests train on.
/// The same arguments give the same bytes, so a test's data does not move under it.
public enum SyntheticDiamonds {
    /// `rows` stones.
    /// - Parameters:
    ///   - seed: another seed gives other stones of the same shape (for new rows to append).
    ///   - mixedCuts: cycle through the five cuts; otherwise every stone is Ideal.
    ///   - roundedCarats: carats rounded to hundredths; otherwise `0.3 + (k % 170) / 100` as
    ///     computed in floating point.
    public static func csv(rows: Int, seed: Int = 0, mixedCuts: Bool = true, roundedCarats: Bool = false) -> String {
        var lines = ["carat,cut,color,clarity,depth,table,price,x,y,z"]
        let colors = ["D", "E", "F", "G", "H", "I", "J"]
        let cuts = ["Fair", "Good", "Very Good", "Premium", "Ideal"]
        for i in 0..<rows {
            let k = i + seed * 7919
            var carat = 0.3 + Double(k % 170) / 100
            if roundedCarats { carat = (carat * 100).rounded() / 100 }
            let x = (6.4 * carat.squareRoot() * 100).rounded() / 100
            let z = (x * 0.618 * 100).rounded() / 100
            let depth = ((100 * z / x) * 10).rounded() / 10
            let color = k % 7
            let price = Int(3500 * carat * carat * (1 + 0.05 * Double(6 - color))) + k % 13
            let cut = mixedCuts ? cuts[k % 5] : "Ideal"
            lines.append("\(carat),\(cut),\(colors[color]),SI1,\(depth),57,\(price),\(x),\(x),\(z)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
