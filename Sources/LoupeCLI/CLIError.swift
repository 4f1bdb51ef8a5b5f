import ArgumentParser

/// A failure the user can act on, printed as one line ("Error: …") with a non-zero exit code.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Runs `body`, turning any error into a one-line `CLIError` (ArgumentParser prints it and exits 1).
func oneLine<T>(_ context: String? = nil, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as CLIError {
        throw error
    } catch let error as ExitCode {
        throw error
    } catch {
        let text = String(describing: error).split(separator: "\n").joined(separator: "; ")
        throw CLIError(context.map { "\($0): \(text)" } ?? text)
    }
}
