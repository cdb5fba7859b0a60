import Foundation
import NeuralCore
import NeuralModels

/// What ``Interrogator/interrogate(_:mode:options:)`` produces.
public enum InterrogationMode: String, Sendable, CaseIterable, Codable {
    /// Caption, then a greedy chain of flavors; the best of caption, classic,
    /// fast and chain prompts (the reference's default `interrogate`).
    case best
    /// Best mode with a cheaper, deterministic chain search (``TurboSettings``):
    /// best-mode quality at a fraction of its cost, never less similar to the
    /// image than fast mode.
    case turbo
    /// "caption, medium artist, trending, movement, flavors".
    case classic
    /// The caption followed by the top-ranked labels.
    case fast
    /// A chain of the labels least like the image, for a negative prompt.
    case negative
    /// The caption alone.
    case caption
    /// The top labels of every table with their similarities.
    case analyze
}

/// Options of one interrogation.
public struct InterrogationOptions: Sendable {
    /// Style mode: this text replaces the caption (and no caption is generated).
    public var subject: String?
    /// Fewest flavors best mode chains (`min_flavors`).
    public var minFlavors: Int = 8
    /// Most flavors fast/best/negative add (`max_flavors`); classic uses 3 on its own.
    public var maxFlavors: Int = 32
    /// Also produce a negative prompt in the same call (not for `negative` itself).
    public var includeNegative: Bool = false
    /// Matches per table in analyze mode.
    public var analysisCount: Int = 5

    /// The reference's defaults.
    public init() {}
}

/// One table's best matches.
public struct TableMatches: Sendable, Codable, Equatable {
    /// The table (medium, artist, movement, trending, flavor, or a user table).
    public var table: String
    /// Labels, best first, with their cosine similarity to the image.
    public var matches: [Match]

    /// A label and its similarity.
    public struct Match: Sendable, Codable, Equatable {
        /// The label.
        public var label: String
        /// Cosine similarity with the image.
        public var similarity: Float
    }
}

/// The outcome of ``Interrogator/interrogate(_:mode:options:)``.
public struct InterrogationResult: Sendable, Codable, Equatable {
    /// The mode run.
    public var mode: InterrogationMode
    /// The caption (generated, or the style subject); nil for negative/analyze.
    public var caption: String?
    /// The prompt (for caption mode the caption; nil for analyze).
    public var prompt: String?
    /// The negative prompt, for negative mode or with `includeNegative`.
    public var negativePrompt: String?
    /// Per-table matches, for analyze mode.
    public var analysis: [TableMatches]?
}

/// Errors of the interrogation pipeline.
public enum InterrogatorError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A mode that needs a caption ran without a caption model or a subject.
    case noCaptionModel
    /// No image was given.
    case noImages

    /// A readable explanation.
    public var description: String {
        switch self {
        case .noCaptionModel: "this mode needs a caption model (or a subject text in style mode)"
        case .noImages: "no image given"
        }
    }
}

extension Interrogator {
    /// The L2-normalised embedding of `images`: for several images, the mean
    /// of their normalised embeddings, normalised again (one prompt for all).
    /// - Throws: ``InterrogatorError/noImages``, the encoder's errors,
    ///   ``NonFiniteOutputError`` when the embedding is not finite.
    public func imageEmbedding(_ images: [RGBImage]) throws -> [Float] {
        guard !images.isEmpty else { throw InterrogatorError.noImages }
        let embedding = try encoder.imageEmbedding(images)
        guard embedding.allSatisfy(\.isFinite) else { throw NonFiniteOutputError(output: "the image embedding") }
        return embedding
    }

    /// The caption of the first image (captions describe one image; combined
    /// interrogations caption the first).
    public func caption(_ image: RGBImage) throws -> String {
        guard let captioner else { throw InterrogatorError.noCaptionModel }
        let maxTokens = configuration.captionMaxLength
        let report = configuration.progress
        return try captioner.caption(image, maxTokens: maxTokens) { done, total in
            report?(.captioning(token: done, maxTokens: total))
        }
    }

    /// Interrogates `images` (one prompt for all of them) in `mode`.
    public func interrogate(_ images: [RGBImage], mode: InterrogationMode, options: InterrogationOptions = .init()) throws -> InterrogationResult {
        guard let first = images.first else { throw InterrogatorError.noImages }
        var result = InterrogationResult(mode: mode)
        let needsCaption = [.best, .turbo, .classic, .fast, .caption].contains(mode)
        if needsCaption { result.caption = try options.subject ?? caption(first) }
        if mode == .caption {
            result.prompt = result.caption
            if options.includeNegative { result.negativePrompt = try negativePrompt(image: imageEmbedding(images), maxFlavors: options.maxFlavors) }
            return result
        }
        let image = try imageEmbedding(images)
        let caption = result.caption ?? ""
        switch mode {
        case .best, .turbo:
            result.prompt = try bestPrompt(image: image, caption: caption, minFlavors: options.minFlavors, maxFlavors: options.maxFlavors,
                                           turbo: mode == .turbo ? configuration.turbo : nil)
        case .classic:
            result.prompt = try classicPrompt(image: image, caption: caption)
        case .fast:
            result.prompt = try fastPrompt(image: image, caption: caption, maxFlavors: options.maxFlavors)
        case .negative:
            result.negativePrompt = try negativePrompt(image: image, maxFlavors: options.maxFlavors)
        case .analyze:
            result.analysis = try analysis(image: image, count: options.analysisCount).map { table, matches in
                TableMatches(table: table, matches: matches.map { TableMatches.Match(label: $0.label, similarity: $0.similarity) })
            }
        case .caption:
            break
        }
        if options.includeNegative && mode != .negative && mode != .analyze {
            result.negativePrompt = try negativePrompt(image: image, maxFlavors: options.maxFlavors)
        }
        return result
    }
}
