import Foundation

/// A named pointer to a model version.
public enum ModelAlias: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// The version that serves traffic.
    case production
    /// The candidate under evaluation.
    case staging

    public var description: String { rawValue }
}

/// `aliases/<model>.json`: where each alias points now, and every move that got it there.
///
/// On disk: `{ "production": 7, "staging": 8, "history": [ {alias, from, to, at, reason, action} … ] }`.
public struct AliasRecord: Sendable, Hashable, Codable {
    /// The production version, if one was promoted.
    public var production: Int?
    /// The staging version, if one was promoted.
    public var staging: Int?
    /// Every move, oldest first. Never rewritten, only appended to.
    public var history: [AliasMove]

    /// An empty record.
    public init(production: Int? = nil, staging: Int? = nil, history: [AliasMove] = []) {
        self.production = production
        self.staging = staging
        self.history = history
    }

    /// The version `alias` points to.
    public subscript(alias: ModelAlias) -> Int? {
        get {
            switch alias {
            case .production: production
            case .staging: staging
            }
        }
        set {
            switch alias {
            case .production: production = newValue
            case .staging: staging = newValue
            }
        }
    }

    /// The versions `alias` has pointed to that a rollback can return to, oldest first; the
    /// last is the current one. A promote pushes, a rollback pops.
    public func rollbackStack(for alias: ModelAlias) -> [Int] {
        var stack: [Int] = []
        for move in history where move.alias == alias {
            switch move.action {
            case .promote:
                if stack.last != move.to { stack.append(move.to) }
            case .rollback:
                if !stack.isEmpty { stack.removeLast() }
                if stack.last != move.to { stack.append(move.to) }
            }
        }
        return stack
    }
}

/// One alias move.
public struct AliasMove: Sendable, Hashable, Codable {
    /// Why the alias moved.
    public enum Action: String, Sendable, Hashable, Codable {
        /// An explicit promotion.
        case promote
        /// A return to the previous version.
        case rollback
    }

    /// Which alias moved.
    public var alias: ModelAlias
    /// Where it pointed before (nil for the first promotion).
    public var from: Int?
    /// Where it points now.
    public var to: Int
    /// When (UTC, whole seconds).
    public var at: Date
    /// Why, in the operator's words.
    public var reason: String?
    /// Promotion or rollback.
    public var action: Action

    /// Creates a move.
    public init(alias: ModelAlias, from: Int?, to: Int, at: Date, reason: String?, action: Action) {
        self.alias = alias
        self.from = from
        self.to = to
        self.at = at
        self.reason = reason
        self.action = action
    }
}
