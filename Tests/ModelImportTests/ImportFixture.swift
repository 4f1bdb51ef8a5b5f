import Foundation
import ModelImport
import TreeModel

/// A model saved by LightGBM or XGBoost with the library's own predictions on test rows
/// (made by scripts/make-import-fixtures.py): `x…, raw, contributions…, bias` per line.
struct ImportFixture {
    let name: String
    let model: Ensemble
    var rows: [[Double]] = []
    var raw: [Double] = []
    var contributions: [[Double]] = []
    var bias: [Double] = []

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func file(_ name: String) throws -> Data { try Data(contentsOf: directory.appendingPathComponent(name)) }

    init(_ name: String) throws {
        self.name = name
        if name.hasPrefix("lightgbm") {
            model = try LightGBMImporter.ensemble(text: String(decoding: try Self.file(name + ".txt"), as: UTF8.self))
        } else {
            model = try XGBoostImporter.ensemble(json: try Self.file(name + ".json"))
        }
        let n = model.featureCount
        for line in String(decoding: try Self.file(name + ".csv"), as: UTF8.self).split(separator: "\n") {
            let values = line.split(separator: ",").map { Double(String($0))! }
            precondition(values.count == 2 * n + 2, "\(name): a line has \(values.count) values")
            rows.append(Array(values[0..<n]))
            raw.append(values[n])
            contributions.append(Array(values[(n + 1)..<(2 * n + 1)]))
            bias.append(values[2 * n + 1])
        }
    }

    static let lightGBM = ["lightgbm-numeric", "lightgbm-zero-missing", "lightgbm-categorical"]
    static let xgboost = ["xgboost-numeric", "xgboost-categorical"]
}
