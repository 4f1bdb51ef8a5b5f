import Foundation
import PostgresNIO

/// A PostgreSQL location as users write it — `postgres://user:password@host:5432/database`,
/// `?sslmode=disable|prefer|require`, or `?host=/run/postgresql` for a Unix socket — turned
/// into a postgres-nio client configuration. Shared by the token store and the request log so
/// both accept and refuse the same URLs and never print a password.
public enum PostgresLocation {
    /// Why a location was refused (the password already redacted from the message).
    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// The client configuration for `url`: at most `maximumConnections`, 3 s to connect.
    public static func configuration(_ url: String, maximumConnections: Int = 4) throws(Invalid)
        -> PostgresClient.Configuration
    {
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://"), let components = URLComponents(string: url),
            let user = components.user, !user.isEmpty
        else {
            throw Invalid(description: "a PostgreSQL location looks like postgres://user:password@host:5432/database, got "
                + redacted(url))
        }
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        let password = components.password?.removingPercentEncoding
        var configuration: PostgresClient.Configuration
        if let socketDirectory = query["host"], socketDirectory.hasPrefix("/") {
            configuration = PostgresClient.Configuration(
                unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(components.port ?? 5432)", username: user,
                password: password, database: database.isEmpty ? nil : database)
        } else {
            let tls: PostgresClient.Configuration.TLS
            switch query["sslmode"] ?? "prefer" {
            case "disable": tls = .disable
            case "require": tls = .require(.makeClientConfiguration())
            case "prefer": tls = .prefer(.makeClientConfiguration())
            case let other: throw Invalid(description: "sslmode must be disable, prefer or require, got \"\(other)\"")
            }
            configuration = PostgresClient.Configuration(
                host: components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1", port: components.port ?? 5432,
                username: user, password: password, database: database.isEmpty ? nil : database, tls: tls)
        }
        configuration.options.connectTimeout = .seconds(3)
        configuration.options.maximumConnections = maximumConnections
        return configuration
    }

    /// The URL with its password replaced by `***`.
    public static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? "postgres://***"
    }
}
