import Foundation
import NeuralCore

/// The label lists an interrogator ranks, one for each role the reference's
/// modes give them: classic mode names the best medium, artist, trending label
/// and movement, best and fast mode draw from all five ranked lists, and negative
/// mode adds the negative list.
///
/// The default is clip-interrogator 0.6.0's own lists (``reference()``); a folder
/// with a `label-set.json` supplies another world's labels (the demo model's
/// colours and shapes, for instance).
public struct LabelSet: Sendable, Equatable {
    /// One list of labels.
    public struct List: Sendable, Equatable {
        /// Names the list's embedding cache file (`<model>_<name>.safetensors`).
        public var name: String
        /// How analyses title the list ("medium", "colors", …).
        public var title: String
        /// The labels, in order.
        public var labels: [String]

        /// A list called `name`, titled `title` (default: the name).
        public init(name: String, title: String? = nil, labels: [String]) {
            self.name = name
            self.title = title ?? name
            self.labels = labels
        }
    }

    /// Classic mode's "artist" (the reference's "by X" and "inspired by X").
    public var artists: List
    /// The main pool of modifiers (the reference's ~100k flavors).
    public var flavors: List
    /// Classic mode's "medium".
    public var mediums: List
    /// Classic mode's "movement".
    public var movements: List
    /// Classic mode's "trending" label.
    public var trendings: List
    /// Extra candidates for negative prompts.
    public var negative: List

    /// A set from its six lists.
    public init(artists: List, flavors: List, mediums: List, movements: List, trendings: List, negative: List) {
        self.artists = artists
        self.flavors = flavors
        self.mediums = mediums
        self.movements = movements
        self.trendings = trendings
        self.negative = negative
    }

    /// The roles a label-set folder must map, as `label-set.json` spells them.
    public static let roles = ["artists", "flavors", "mediums", "movements", "trendings", "negative"]

    /// A label set that could not be read.
    public enum LoadError: Error, CustomStringConvertible, Sendable, Equatable {
        /// `label-set.json` is missing or unreadable.
        case missingIndex(path: String)
        /// `label-set.json` is not an object mapping every role to a list name.
        case invalidIndex(path: String, reason: String)
        /// A list file named by the index is missing or unreadable.
        case missingList(path: String)
        /// A list file has no label, or only blank lines (its role would have
        /// nothing to rank).
        case emptyList(path: String)

        /// What went wrong, naming the file.
        public var description: String {
            switch self {
            case .missingIndex(let path): "\(path): no label-set index (label-set.json) to read"
            case .invalidIndex(let path, let reason): "\(path): \(reason)"
            case .missingList(let path): "\(path): cannot read label list"
            case .emptyList(let path): "\(path): no labels (the file is empty or has only blank lines)"
            }
        }
    }

    /// clip-interrogator 0.6.0's lists, from the bundled copies: artists as "by X"
    /// and "inspired by X", flavors, mediums, movements, the 72 trending labels
    /// and the negative list. Their names are the reference's cache names, so
    /// caches interchange with it.
    public static func reference() throws -> LabelSet {
        let rawArtists = try ReferenceLabels.list(.artists)
        return LabelSet(
            artists: List(name: "artists", title: "artist", labels: ReferenceLabels.artists(from: rawArtists)),
            flavors: List(name: "flavors", title: "flavor", labels: try ReferenceLabels.list(.flavors)),
            mediums: List(name: "mediums", title: "medium", labels: try ReferenceLabels.list(.mediums)),
            movements: List(name: "movements", title: "movement", labels: try ReferenceLabels.list(.movements)),
            trendings: List(name: "trendings", title: "trending", labels: ReferenceLabels.trendings),
            negative: List(name: "negative", labels: try ReferenceLabels.list(.negative)))
    }

    /// The label set in `directory`: `label-set.json` maps each role to the name
    /// of a list whose labels are in `<name>.txt` beside it (one per line, read
    /// as the reference reads its lists), e.g.
    /// `{"artists": "colors", "flavors": "shapes", "mediums": "styles", …}`.
    ///
    /// Blank lines are kept, as the reference keeps them (they count in the cache
    /// hash), but a list must hold at least one label that is not blank.
    ///
    /// - Throws: ``LoadError`` naming the file that is missing, malformed or empty.
    public init(directory: URL) throws {
        let index = directory.appendingPathComponent("label-set.json")
        guard let data = try? readRegularFile(index.path, limit: Checkpoint.maximumJSONBytes) else {
            throw LoadError.missingIndex(path: index.path)
        }
        guard let object = try? JSONSerialization.jsonObject(with: data), let names = object as? [String: String] else {
            throw LoadError.invalidIndex(path: index.path, reason: "expected an object of role to list name")
        }
        for role in Self.roles {
            guard let name = names[role] else {
                throw LoadError.invalidIndex(path: index.path, reason: "no list for \"\(role)\" (needs \(Self.roles.joined(separator: ", ")))")
            }
            guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                throw LoadError.invalidIndex(path: index.path, reason: "\"\(name)\" is not a list name")
            }
        }
        func list(_ role: String) throws -> List {
            let name = names[role]!
            let file = directory.appendingPathComponent(name + ".txt")
            guard let labels = try? LabelList.load(contentsOf: file) else { throw LoadError.missingList(path: file.path) }
            guard labels.contains(where: { !$0.isEmpty }) else { throw LoadError.emptyList(path: file.path) }
            return List(name: name, labels: labels)
        }
        self.init(artists: try list("artists"), flavors: try list("flavors"), mediums: try list("mediums"),
                  movements: try list("movements"), trendings: try list("trendings"), negative: try list("negative"))
    }
}

extension LabelSet.LoadError: LocalizedError {
    /// The same text as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}
