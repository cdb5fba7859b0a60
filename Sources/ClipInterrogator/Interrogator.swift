import Foundation
import NeuralCore
import NeuralModels
import Synchronization

/// Turns images into text-to-image prompts the way clip-interrogator 0.6.0 does:
/// a caption, then labels (artists, flavors, mediums, movements, trending sites)
/// ranked by an image–text encoder, assembled by one of the reference's modes.
///
/// The encoder is any `ImageTextEncoder` (CLIP is the first); the caption
/// model any `ImageCaptioning` (BLIP is the first). An interrogator is safe to
/// share across concurrent tasks. The label tables' embeddings are loaded (or
/// computed, and cached on disk in the reference's format when a cache
/// directory is configured) on first use, once: caption-only work never needs
/// them.
public final class Interrogator: Sendable {
    /// This package's version (`interrogate --version` prints it).
    public static let version = "0.1.0"

    /// The image–text encoder that scores labels against images.
    public let encoder: any ImageTextEncoder
    /// The caption model; nil when captions are always supplied (style mode).
    public let captioner: (any ImageCaptioning)?
    /// The settings.
    public let configuration: InterrogatorConfiguration
    /// User label tables as (name, labels), embedded with the reference's.
    public let customTableLabels: [(name: String, labels: [String])]
    /// The tables once built.
    private let builtTables: Mutex<LabelTables?>

    /// An interrogator around `encoder` and `captioner`.
    ///
    /// - Parameters:
    ///   - encoder: the image–text encoder that ranks labels (CLIP: `CLIPEncoder`).
    ///   - captioner: the caption model (BLIP: `BlipCaptioner`), or nil when
    ///     captions are always supplied (style mode).
    ///   - configuration: the settings.
    ///   - customTables: user label tables as (name, labels); the name also
    ///     names their cache file.
    public init(encoder: any ImageTextEncoder, captioner: (any ImageCaptioning)?, configuration: InterrogatorConfiguration,
                customTables: [(name: String, labels: [String])] = []) {
        if let threads = configuration.threads { Threading.setThreadCount(threads) }
        self.encoder = encoder
        self.captioner = captioner
        self.configuration = configuration
        customTableLabels = customTables
        builtTables = Mutex(nil)
    }

    /// An interrogator over ready-made tables (tests use small ones).
    init(encoder: any ImageTextEncoder, captioner: (any ImageCaptioning)?, configuration: InterrogatorConfiguration,
         tables: LabelTables) {
        self.encoder = encoder
        self.captioner = captioner
        self.configuration = configuration
        customTableLabels = tables.custom.map { ($0.name, $0.labels) }
        builtTables = Mutex(tables)
    }

    /// Loads an interrogator from local Hugging Face checkpoint folders: a CLIP
    /// model (`CLIPEncoder/init(directory:)`) and, unless nil, a BLIP captioning
    /// model (`BlipCaptioner/init(directory:options:prompt:)`).
    public static func load(clipDirectory: URL, captionDirectory: URL?, configuration: InterrogatorConfiguration,
                            captionOptions: GenerationOptions = GenerationOptions(),
                            customTables: [(name: String, labels: [String])] = []) throws -> Interrogator {
        Interrogator(encoder: try CLIPEncoder(directory: clipDirectory),
                     captioner: try captionDirectory.map { try BlipCaptioner(directory: $0, options: captionOptions) },
                     configuration: configuration, customTables: customTables)
    }

    /// The reference's label tables and the user tables, with their embeddings:
    /// loaded from the cache, or computed (reporting progress) and cached, the
    /// first time they are needed; concurrent callers wait for that one build.
    /// A cancelled build (``prepareLabelTables(progress:)``) keeps nothing but
    /// the tables it finished and cached; the next call starts again.
    public func labelTables() throws -> LabelTables {
        try builtTables.withLock { built in
            if let built { return built }
            let builder = LabelTableBuilder(encoder: encoder, configuration: configuration, report: report)
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

    /// L2-normalised embeddings of `texts`, `[N, D]`.
    public func textEmbeddings(_ texts: [String]) throws -> Tensor {
        try encoder.textEmbeddings(texts: texts)
    }

    /// Cosine similarity of each text with the image embedding `image`.
    public func similarities(_ image: [Float], _ texts: [String]) throws -> [Float] {
        try encoder.similarities(texts, to: image)
    }

    /// Cosine similarity of `text` with the image embedding `image`.
    public func similarity(_ image: [Float], _ text: String) throws -> Float {
        try similarities(image, [text])[0]
    }

    /// `_truncate_to_fit`: keeps the ", "-separated parts of `text` while they fit,
    /// measuring each candidate without the ", " it then adds (as the reference does).
    func truncateToFit(_ text: String) -> String {
        let parts = text.pythonSplit(", ")
        var result = parts[0]
        for part in parts.dropFirst() {
            if encoder.fillsContext(result + part) { break }
            result += ", " + part
        }
        return result
    }
}
