import LoupeProtocol

/// What a caller may do.
public enum Scope: String, Sendable, Hashable, CaseIterable {
    /// Predict, BatchPredict, FindSimilar.
    case predict
    /// ListModels, GetJob.
    case modelsRead = "models:read"
    /// Retrain, and everything above.
    case admin

    /// Whether a caller holding `scopes` may call `method`.
    public static func allows(_ scopes: Set<Scope>, _ method: Method) -> Bool {
        if scopes.contains(.admin) { return true }
        switch method {
        case .hello, .health: return true
        case .predict, .batchPredict, .findSimilar: return scopes.contains(.predict)
        case .listModels, .getJob: return scopes.contains(.modelsRead)
        case .retrain: return false
        }
    }
}

/// Who is calling, as established by the handshake.
public struct Principal: Sendable, Hashable {
    /// The caller's name (a partner, "gateway", "loupe-cli").
    public var name: String
    public var scopes: Set<Scope>

    public init(name: String, scopes: Set<Scope>) {
        self.name = name
        self.scopes = scopes
    }
}

/// Checks the token of a `Hello`.
///
/// Implementations decide who may connect: the model server ships a static shared secret for
/// trusted callers (the gateway, the CLI on the same machine); the gateway checks partner
/// tokens. Throw a `ProtocolError` with `.unauthenticated` for a bad token — its message goes
/// to the client, so it must never contain the token.
public protocol Authenticator: Sendable {
    func authenticate(token: String, clientName: String) async throws(ProtocolError) -> Principal
}

/// Accepts one shared secret (compared in constant time) and grants every scope.
public struct StaticSecretAuthenticator: Authenticator {
    private let secret: [UInt8]
    private let principal: Principal

    public init(secret: String, principal: Principal = Principal(name: "trusted", scopes: Set(Scope.allCases))) {
        self.secret = Array(secret.utf8)
        self.principal = principal
    }

    public func authenticate(token: String, clientName: String) async throws(ProtocolError) -> Principal {
        let given = Array(token.utf8)
        var difference = UInt8(given.count == secret.count ? 0 : 1)
        for i in 0..<max(given.count, secret.count) {
            difference |= (i < given.count ? given[i] : 0) ^ (i < secret.count ? secret[i] : 0)
        }
        guard !secret.isEmpty, difference == 0 else {
            throw ProtocolError(code: .unauthenticated, message: "the token is not valid for this server")
        }
        return principal
    }
}
