/// Token sequences stored as a tree (a trie): sequences that start alike share
/// the nodes of their common first tokens, so a causal text tower can compute
/// each shared token once (``CLIPTextTransformer/encode(tree:after:outputs:)``).
///
/// Nodes are numbered in creation order, so a node's parent always comes before
/// it.
public struct TokenTree: Sendable, Equatable {
    /// The token of each node.
    public private(set) var tokens: [Int] = []
    /// The node before each node in its sequences; −1 for the first level.
    public private(set) var parents: [Int32] = []
    /// Each node's distance from the first level (0 on it).
    public private(set) var depths: [Int32] = []
    /// For each sequence inserted, in order, the node of its last token.
    public private(set) var ends: [Int] = []
    /// The total length of the sequences inserted.
    public private(set) var insertedTokens = 0
    private var children: [[Int: Int32]] = []
    private var roots: [Int: Int32] = [:]

    /// A tree of `sequences` (each non-empty).
    public init(_ sequences: [[Int]]) {
        for sequence in sequences { insert(sequence) }
    }

    /// Adds `sequence` (non-empty), reusing the nodes of any inserted sequence
    /// that starts the same way.
    public mutating func insert(_ sequence: [Int]) {
        precondition(!sequence.isEmpty, "TokenTree takes non-empty sequences")
        var parent: Int32 = -1
        for (depth, token) in sequence.enumerated() {
            let existing = parent < 0 ? roots[token] : children[Int(parent)][token]
            if let existing {
                parent = existing
                continue
            }
            let node = Int32(tokens.count)
            tokens.append(token)
            parents.append(parent)
            depths.append(Int32(depth))
            children.append([:])
            if parent < 0 { roots[token] = node } else { children[Int(parent)][token] = node }
            parent = node
        }
        ends.append(Int(parent))
        insertedTokens += sequence.count
    }

    /// The number of nodes: the tokens a tree-aware encoder computes.
    public var count: Int { tokens.count }
    /// The deepest node's depth (−1 for an empty tree).
    public var maxDepth: Int { Int(depths.max() ?? -1) }
    /// Tokens saved by sharing: ``insertedTokens`` minus ``count``.
    public var sharedTokens: Int { insertedTokens - count }

    /// Trees are equal when they hold the same nodes and sequence ends.
    public static func == (lhs: TokenTree, rhs: TokenTree) -> Bool {
        lhs.tokens == rhs.tokens && lhs.parents == rhs.parents && lhs.ends == rhs.ends
    }
}
