import LoupeProtocol

/// Who is calling, as established by the handshake.
public struct Principal: Sendable, Hashable {
    /// The caller's name (a partner, "gateway", "loupe-cli").
    public var name: String
    /// What it may call.
    public var scopes: Set<Scope>
    /// The public id of the token it came with, when a gateway vouched for it (never the secret).
    public var tokenID: String?

    /// A principal with these scopes.
    public init(name: String, scopes: Set<Scope>, tokenID: String? = nil) {
        self.name = name
        self.scopes = scopes
        self.tokenID = tokenID
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

    /// Checks a whole `Hello`. The default checks its token and refuses `acting_for`, which only
    /// a `GatewayTrustingAuthenticator` accepts.
    func authenticate(hello: Loupe_V1_Hello) async throws(ProtocolError) -> Principal
}

extension Authenticator {
    public func authenticate(hello: Loupe_V1_Hello) async throws(ProtocolError) -> Principal {
        guard !hello.hasActingFor else {
            throw ProtocolError(
                code: .unauthenticated, message: "acting_for is accepted only from a gateway with the internal secret")
        }
        return try await authenticate(token: hello.token, clientName: hello.clientName)
    }
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

/// The model server's authenticator behind a gateway: the internal secret (shared with the
/// gateway only) is required on every connection, and a `Hello.acting_for` that comes with it
/// names the partner the gateway is calling for — its name and scopes become the connection's
/// principal, so the server's scope checks and job records see the partner, not the gateway.
///
/// Without `acting_for`, the secret's holder (the gateway's health checks, local tools) gets
/// `trusted`. With anything but the secret, `acting_for` is refused.
public struct GatewayTrustingAuthenticator: Authenticator {
    private let secret: StaticSecretAuthenticator

    /// Trusts `internalSecret`; `trusted` is the principal of a connection without `acting_for`.
    public init(
        internalSecret: String, trusted: Principal = Principal(name: "trusted", scopes: Set(Scope.allCases))
    ) {
        secret = StaticSecretAuthenticator(secret: internalSecret, principal: trusted)
    }

    public func authenticate(token: String, clientName: String) async throws(ProtocolError) -> Principal {
        try await secret.authenticate(token: token, clientName: clientName)
    }

    public func authenticate(hello: Loupe_V1_Hello) async throws(ProtocolError) -> Principal {
        let trusted = try await secret.authenticate(token: hello.token, clientName: hello.clientName)
        guard hello.hasActingFor else { return trusted }
        let actingFor = hello.actingFor
        guard !actingFor.principal.isEmpty else {
            throw ProtocolError(code: .unauthenticated, message: "acting_for names no principal")
        }
        return Principal(
            name: actingFor.principal, scopes: Scope.parse(actingFor.scopes),
            tokenID: actingFor.tokenID.isEmpty ? nil : actingFor.tokenID)
    }
}
