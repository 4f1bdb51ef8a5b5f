import Foundation

/// A named pointer to a model version.
public enum ModelAlias: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// The version that serves traffic.
    case production
    /// The candidate under evaluation.
    case staging
    /// A version serving a share of partners' calls beside production (`AliasRecord.canaryPercent`).
    case canary
    /// A version scoring live traffic beside production, whose answers are logged but never sent.
    case shadow

    /// The aliases a live rollout uses: each routes traffic to its version while it is set.
    public static let rollout: [ModelAlias] = [.canary, .shadow]

    public var description: String { rawValue }
}

/// `aliases/<model>.json`: where each alias points now, and every move that got it there.
///
/// On disk: `{ "production": 7, "staging": 8, "canary": 9, "canaryPercent": 10, "shadow": 9,
/// "history": [ {alias, from, to, at, reason, action, percent} … ] }`. Files written before canary
/// and shadow existed decode with both unset.
public struct AliasRecord: Sendable, Hashable, Codable {
    /// The production version, if one was promoted.
    public var production: Int?
    /// The staging version, if one was promoted.
    public var staging: Int?
    /// The canary version, while a canary runs.
    public var canary: Int?
    /// The share of partners (0–100) the canary answers, while it runs.
    public var canaryPercent: Int?
    /// The shadow version, while one scores beside production.
    public var shadow: Int?
    /// Every move, oldest first. Never rewritten, only appended to.
    public var history: [AliasMove]

    /// An empty record.
    public init(
        production: Int? = nil, staging: Int? = nil, canary: Int? = nil, canaryPercent: Int? = nil, shadow: Int? = nil,
        history: [AliasMove] = []
    ) {
        self.production = production
        self.staging = staging
        self.canary = canary
        self.canaryPercent = canaryPercent
        self.shadow = shadow
        self.history = history
    }

    /// The version `alias` points to.
    public subscript(alias: ModelAlias) -> Int? {
        get {
            switch alias {
            case .production: production
            case .staging: staging
            case .canary: canary
            case .shadow: shadow
            }
        }
        set {
            switch alias {
            case .production: production = newValue
            case .staging: staging = newValue
            case .canary: canary = newValue
            case .shadow: shadow = newValue
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
                if let to = move.to, stack.last != to { stack.append(to) }
            case .rollback:
                if !stack.isEmpty { stack.removeLast() }
                if let to = move.to, stack.last != to { stack.append(to) }
            case .clear:
                stack.removeAll()
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
        /// The alias was unset (a canary or shadow ended); `to` is nil.
        case clear
    }

    /// Which alias moved.
    public var alias: ModelAlias
    /// Where it pointed before (nil for the first promotion).
    public var from: Int?
    /// Where it points now (nil once cleared).
    public var to: Int?
    /// When (UTC, whole seconds).
    public var at: Date
    /// Why, in the operator's words (or the automatic rollback's).
    public var reason: String?
    /// Promotion, rollback or clear.
    public var action: Action
    /// For a canary move: the share of partners it answers from now on.
    public var percent: Int?

    /// Creates a move.
    public init(alias: ModelAlias, from: Int?, to: Int?, at: Date, reason: String?, action: Action, percent: Int? = nil) {
        self.alias = alias
        self.from = from
        self.to = to
        self.at = at
        self.reason = reason
        self.action = action
        self.percent = percent
    }
}
