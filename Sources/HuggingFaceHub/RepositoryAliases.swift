/// Short names an application accepts in place of repository ids
/// (`blip-large` for `Salesforce/blip-image-captioning-large`): the hook through
/// which a ``ModelResolver`` learns them.
///
/// The module knows no names of its own; an application passes its table:
///
/// ```swift
/// let aliases = RepositoryAliases(names: ["small"]) { $0 == "small" ? "org/small-model" : nil }
/// let resolver = ModelResolver(environment: try .current(), aliases: aliases)
/// ```
public struct RepositoryAliases: Sendable {
    /// The names accepted, listed in ``HubError/unknownModel(name:knownNames:)``'s message.
    public let names: [String]
    private let lookup: @Sendable (String) -> String?

    /// Aliases that `repository` maps to repository ids.
    /// - Parameters:
    ///   - names: the names accepted, for messages that list them.
    ///   - repository: the repository id a name stands for, or nil for a name that is no alias.
    public init(names: [String], repository: @escaping @Sendable (String) -> String?) {
        self.names = names
        lookup = repository
    }

    /// No aliases: only directories and repository ids are accepted.
    public static let none = RepositoryAliases(names: []) { _ in nil }

    /// The repository id `name` stands for.
    /// - Parameter name: a name as the user gave it.
    /// - Returns: the repository id, or nil if `name` is no alias.
    public func repository(for name: String) -> String? {
        lookup(name)
    }
}
