import Foundation
import NeuralCore
import NeuralModels
import Synchronization

/// Turns images into text-to-image prompts the way clip-interrogator 0.6.0 does:
/// a caption, then CLIP-ranked labels (artists, flavors, mediums, movements,
/// trending sites) assembled by one of the reference's modes.
///
/// An interrogator is safe to share across concurrent tasks. The label tables'
/// embeddings are loaded (or computed, and cached on disk in the reference's
/// format when a cache directory is configured) on first use, once: caption-only
/// work never needs them.
public final class Interrogator: Sendable {
    /// The CLIP model that scores labels against images.
    public let clip: CLIPModel
    /// CLIP's tokenizer (open_clip-exact).
    public let tokenizer: CLIPTokenizer
    /// How images are prepared for CLIP's vision tower.
    public let clipPreprocessing: CLIPImagePreprocessing
    /// The caption model; nil when captions are always supplied (style mode).
    public let captioner: (any ImageCaptioning)?
    /// The settings.
    public let configuration: InterrogatorConfiguration
    /// User label tables as (name, labels), embedded with the reference's.
    public let customTableLabels: [(name: String, labels: [String])]
    /// The tables once built.
    private let builtTables: Mutex<LabelTables?>

    /// The label tables an interrogator ranks.
    public struct LabelTables: Sendable {
        /// "by X" and "inspired by X" for every artist.
        public let artists: LabelTable
        /// ~100k style and content modifiers.
        public let flavors: LabelTable
        /// Media ("a watercolor painting", …).
        public let mediums: LabelTable
        /// Art movements.
        public let movements: LabelTable
        /// Site names and "trending on …" phrases.
        public let trendings: LabelTable
        /// Labels for negative prompts.
        public let negative: LabelTable
        /// User tables, in the order given.
        public let custom: [LabelTable]
        /// How analyses title a table, by table name (the reference's "artist",
        /// "flavor", …); a table not listed is titled by its name.
        public var titles: [String: String] = [:]

        /// The tables best and fast mode draw flavors from, merged in the
        /// reference's order (artists, flavors, mediums, movements, trendings), then
        /// the user tables.
        public var merged: LabelTable { LabelTable(merging: [artists, flavors, mediums, movements, trendings] + custom) }
    }

    /// An interrogator around `clip` (with its `tokenizer` and image
    /// preprocessing) and a `captioner`.
    ///
    /// - Parameter customTables: user label tables as (name, labels); the name also
    ///   names their cache file.
    public init(clip: CLIPModel, tokenizer: CLIPTokenizer, clipPreprocessing: CLIPImagePreprocessing,
                captioner: (any ImageCaptioning)?, configuration: InterrogatorConfiguration,
                customTables: [(name: String, labels: [String])] = []) {
        if let threads = configuration.threads { Threading.setThreadCount(threads) }
        self.clip = clip
        self.tokenizer = tokenizer
        self.clipPreprocessing = clipPreprocessing
        self.captioner = captioner
        self.configuration = configuration
        customTableLabels = customTables
        builtTables = Mutex(nil)
    }

    /// An interrogator over ready-made tables (tests use small ones).
    init(clip: CLIPModel, tokenizer: CLIPTokenizer, clipPreprocessing: CLIPImagePreprocessing,
         captioner: (any ImageCaptioning)?, configuration: InterrogatorConfiguration, tables: LabelTables) {
        self.clip = clip
        self.tokenizer = tokenizer
        self.clipPreprocessing = clipPreprocessing
        self.captioner = captioner
        self.configuration = configuration
        customTableLabels = tables.custom.map { ($0.name, $0.labels) }
        builtTables = Mutex(tables)
    }

    /// The reference's label tables and the user tables, with their embeddings:
    /// loaded from the cache, or computed (reporting progress) and cached, the
    /// first time they are needed; concurrent callers wait for that one build.
    public func labelTables() throws -> LabelTables {
        try builtTables.withLock { built in
            if let built { return built }
            let builder = TableBuilder(clip: clip, tokenizer: tokenizer, configuration: configuration)
            let set = try configuration.labelSet ?? LabelSet.reference()
            let tables = LabelTables(
                artists: try builder.table(set.artists), flavors: try builder.table(set.flavors),
                mediums: try builder.table(set.mediums), movements: try builder.table(set.movements),
                trendings: try builder.table(set.trendings), negative: try builder.table(set.negative),
                custom: try customTableLabels.map { try builder.table(LabelSet.List(name: $0.name, labels: $0.labels)) },
                titles: Dictionary([set.artists, set.flavors, set.mediums, set.movements, set.trendings].map { ($0.name, $0.title) },
                                   uniquingKeysWith: { first, _ in first }))
            built = tables
            return tables
        }
    }

    // MARK: Text scoring

    /// Open_clip token ids of `text` (start and end tokens included, truncated to
    /// the context with the end token last).
    func tokens(_ text: String) -> [Int] {
        tokenizer.encodeUnpadded(text).map { Int($0) }
    }

    /// L2-normalised CLIP embeddings of `texts`, `[N, D]`.
    public func textEmbeddings(_ texts: [String]) throws -> Tensor {
        try clip.textEmbeddings(texts.map(tokens))
    }

    /// Cosine similarity of each text with the image embedding `image`.
    public func similarities(_ image: [Float], _ texts: [String]) throws -> [Float] {
        Self.dot(try textEmbeddings(texts), image)
    }

    /// Cosine similarity of `text` with the image embedding `image`.
    public func similarity(_ image: [Float], _ text: String) throws -> Float {
        try similarities(image, [text])[0]
    }

    /// Rows of `embeddings` `[N, D]` dotted with `image`.
    static func dot(_ embeddings: Tensor, _ image: [Float]) -> [Float] {
        let (rows, d) = (embeddings.shape[0], embeddings.shape[1])
        var result = [Float](repeating: 0, count: rows)
        guard rows > 0 else { return result }
        withExtendedLifetime(embeddings) {
            sgemm(m: rows, n: 1, k: d, a: embeddings.unsafeFloatPointer, lda: d, b: image, ldb: 1, c: &result, ldc: 1)
        }
        return result
    }

    /// `_prompt_at_max_len`: whether `text` fills CLIP's whole context.
    func promptAtMaxLength(_ text: String) -> Bool {
        tokens(text).count >= tokenizer.contextLength
    }

    /// `_truncate_to_fit`: keeps the ", "-separated parts of `text` while they fit,
    /// measuring each candidate without the ", " it then adds (as the reference does).
    func truncateToFit(_ text: String) -> String {
        let parts = text.pythonSplit(", ")
        var result = parts[0]
        for part in parts.dropFirst() {
            if promptAtMaxLength(result + part) { break }
            result += ", " + part
        }
        return result
    }
}

/// Loads label tables from the cache or builds them, reporting progress.
struct TableBuilder {
    let clip: CLIPModel
    let tokenizer: CLIPTokenizer
    let configuration: InterrogatorConfiguration

    /// Labels are encoded (and progress reported) in batches of this many.
    static let encodingBatch = 1024

    func table(_ list: LabelSet.List) throws -> LabelTable {
        let (name, labels) = (list.name, list.labels)
        let cache = configuration.cacheDirectory.map { LabelEmbeddingCache(directory: $0, modelName: configuration.clipModelName) }
        if let cached = cache?.load(table: name, labels: labels) {
            return LabelTable(name: name, labels: labels, embeddings: cached)
        }
        let precomputed = configuration.precomputedCacheDirectory.map {
            LabelEmbeddingCache(directory: $0, modelName: configuration.clipModelName)
        }
        if let published = precomputed?.load(table: name, labels: labels), published.shape[1] == clip.embeddingDimension {
            return LabelTable(name: name, labels: labels, embeddings: published)
        }
        let dimension = clip.embeddingDimension
        var embeddings = Tensor(zeros: [labels.count, dimension])
        try embeddings.withUnsafeMutableFloats { rows in
            for start in stride(from: 0, to: labels.count, by: Self.encodingBatch) {
                let end = min(start + Self.encodingBatch, labels.count)
                let ids = labels[start..<end].map { tokenizer.encodeUnpadded($0).map { Int($0) } }
                try clip.textEmbeddings(ids).copyFloats(into: rows.baseAddress! + start * dimension)
                configuration.progress?(.buildingLabelTable(name: name, done: end, total: labels.count))
            }
        }
        // The reference keeps (and ranks with) the F16-rounded embeddings, cached or not.
        let rounded = embeddings.converted(to: .f16)
        try cache?.store(table: name, labels: labels, embeddings: rounded)
        return LabelTable(name: name, labels: labels, embeddings: rounded)
    }
}
