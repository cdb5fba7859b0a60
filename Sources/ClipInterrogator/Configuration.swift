import Foundation
import NeuralCore
import NeuralModels

/// Settings of an ``Interrogator``: what clip-interrogator's `Config` covers where
/// it makes sense on a CPU.
public struct InterrogatorConfiguration: Sendable {
    /// The image–text encoder's name as the reference spells it
    /// (`ViT-L-14/openai`); it names the label-embedding cache files, so caches
    /// interchange with the reference's.
    public var encoderName: String
    /// The former name of ``encoderName``.
    @available(*, deprecated, renamed: "encoderName")
    public var clipModelName: String {
        get { encoderName }
        set { encoderName = newValue }
    }
    /// Most new tokens a caption may have (`caption_max_length`).
    public var captionMaxLength: Int = 32
    /// Labels per chunk in the reference's chunked ranking (`chunk_size`).
    public var chunkSize: Int = 2048
    /// Rank exactly instead of the reference's chunked top-k (prompts may then
    /// differ from the reference's).
    public var exactRanking: Bool = false
    /// Score chain-search candidates by running only their new tokens against the
    /// current prompt's cached states (the default); false re-encodes every
    /// candidate in full, as the reference does (same results, much slower).
    public var reuseChainPrefix: Bool = true
    /// How many flavors best and negative mode pre-select before the chain
    /// search (`flavor_intermediate_count`).
    public var flavorIntermediateCount: Int = 2048
    /// The knobs of turbo mode's chain search.
    public var turbo = TurboSettings()
    /// The labels to rank; nil means clip-interrogator's own lists
    /// (``LabelSet/reference()``).
    public var labelSet: LabelSet?
    /// Where label embeddings are cached (`cache_path`); nil disables caching.
    public var cacheDirectory: URL?
    /// A read-only folder of label caches in the reference's format, searched
    /// when ``cacheDirectory`` has none: the reference's published caches
    /// (``ReferenceCaches``), as its `download_cache` uses them.
    public var precomputedCacheDirectory: URL?
    /// Threads for BLAS and the kernels; nil keeps the current setting.
    public var threads: Int?
    /// Receives progress reports (caption, cache building, chain steps); nil is quiet.
    public var progress: (@Sendable (InterrogatorProgress) -> Void)?
    /// Receives problems the interrogator works around (a cache it cannot write);
    /// nil ignores them.
    public var warnings: (@Sendable (InterrogatorWarning) -> Void)?

    /// A configuration for the encoder called `encoderName`, with the
    /// reference's defaults for everything else.
    public init(encoderName: String = "ViT-L-14/openai") {
        self.encoderName = encoderName
    }

    /// The former spelling of ``init(encoderName:)``.
    @available(*, deprecated, renamed: "init(encoderName:)")
    public init(clipModelName: String) {
        self.init(encoderName: clipModelName)
    }

    /// The ranking method these settings select.
    public var ranking: RankingMethod { exactRanking ? .exact : .chunked(chunkSize: chunkSize) }
}

/// A problem an interrogator worked around.
public enum InterrogatorWarning: Sendable, Equatable, CustomStringConvertible {
    /// Label embeddings could not be stored in the cache `directory`; the tables
    /// are kept in memory for this interrogator and embedded again next time.
    /// Reported once per interrogator.
    case cacheNotWritten(directory: String, reason: String)

    /// A one-line explanation.
    public var description: String {
        switch self {
        case let .cacheNotWritten(directory, reason):
            "cannot write label embeddings to the cache \(directory) (\(reason)); they are kept in memory for this run"
        }
    }
}

/// A progress report from long-running work.
public enum InterrogatorProgress: Sendable, Equatable {
    /// Encoding a label table's embeddings (not cached yet): `done` of `total` labels.
    case buildingLabelTable(name: String, done: Int, total: Int)
    /// A caption is being generated: `token` of at most `maxTokens`.
    case captioning(token: Int, maxTokens: Int)
    /// A chain-search step (`desc` as the reference names it) finished: `step` of
    /// at most `maxSteps`, and what scoring its candidates cost.
    case chainStep(name: String, step: Int, maxSteps: Int, cost: TextEncodingCost)
}
