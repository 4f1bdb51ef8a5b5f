/// A failure the user can act on, printed as one line ("Error: …") with a non-zero exit code.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }

    /// Runs `body`, turning any error into a one-line `BenchError` prefixed with `context`.
    static func oneLine<T>(_ context: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as BenchError {
            throw error
        } catch {
            throw BenchError("\(context): " + String(describing: error).split(separator: "\n").joined(separator: "; "))
        }
    }
}
