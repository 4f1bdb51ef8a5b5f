import AsyncTimeout
import Logging
import NIOCore
import PostgresNIO

/// A PostgreSQL connection pool as Loupe's stores use it (the token store, the guestbook): the
/// pool with the task that runs it, and the two ways they call it, one call (`run`) or a
/// transaction (`transaction`), each within a timeout. A failure that is not already the
/// store's own error type comes out as one, made by `failure` from "could not <what> in
/// PostgreSQL at <location>" and the cause.
public final class PostgresPool<Failure: Error>: Sendable {
    /// The pool.
    public let client: PostgresClient
    /// What the pool and the calls log to.
    public let logger: Logger
    /// The URL with its password replaced by `***`, for messages.
    public let location: String
    private let runner: Task<Void, Never>
    private let failure: @Sendable (_ message: String, _ cause: any Error) -> Failure

    /// Starts a pool for `url` (see `PostgresLocation`); it connects on the first call. A URL
    /// `PostgresLocation` refuses throws `invalid(why)`.
    public init(
        url: String, logger: Logger, invalid: (String) -> Failure,
        failure: @escaping @Sendable (_ message: String, _ cause: any Error) -> Failure
    ) throws {
        let configuration: PostgresClient.Configuration
        do {
            configuration = try PostgresLocation.configuration(url)
        } catch {
            throw invalid(error.description)
        }
        self.logger = logger
        self.failure = failure
        location = PostgresLocation.redacted(url)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        runner = Task { await client.run() }
    }

    /// Runs `body` within `timeout` (a server that does not answer at all fails it too).
    public func run<T: Sendable>(
        _ what: String, within timeout: TimeAmount, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        do {
            return try await withTimeout(timeout, body)
        } catch let error as Failure {
            throw error
        } catch {
            throw failure("could not \(what) in PostgreSQL at \(location)", error)
        }
    }

    /// Runs `body` in a transaction on one connection within `timeout`: committed when it
    /// returns, rolled back when it throws. With `statementTimeout` the server also gives up on
    /// a statement stuck behind a lock after `timeout`, so the connection comes back clean
    /// rather than finishing the statement later.
    public func transaction<T: Sendable>(
        _ what: String, within timeout: TimeAmount, statementTimeout: Bool = false,
        _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T
    ) async throws -> T {
        let client = client, logger = logger
        let milliseconds = max(1, timeout.nanoseconds / 1_000_000)
        return try await run(what, within: timeout) {
            try await client.withConnection { connection in
                try await connection.query("BEGIN", logger: logger)
                do {
                    if statementTimeout {
                        try await connection.query(
                            PostgresQuery(unsafeSQL: "SET LOCAL statement_timeout = \(milliseconds)"), logger: logger)
                    }
                    let result = try await body(connection, logger)
                    try await connection.query("COMMIT", logger: logger)
                    return result
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    throw error
                }
            }
        }
    }

    /// Stops the pool without waiting for it (a store whose setup failed).
    public func cancel() {
        runner.cancel()
    }

    /// Stops the pool and waits until it has.
    public func close() async {
        runner.cancel()
        _ = await runner.value
    }
}
