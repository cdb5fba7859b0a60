import Foundation
import NeuralCore
import NeuralModels

/// The reference's modes: which prompt (or analysis) an interrogation produces.
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

    /// Whether the mode starts from a caption (generated, or the style subject):
    /// best, turbo, classic, fast and caption.
    public var usesCaption: Bool { [.best, .turbo, .classic, .fast, .caption].contains(self) }
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

        /// A label and its similarity.
        public init(label: String, similarity: Float) {
            self.label = label
            self.similarity = similarity
        }
    }

    /// A table's matches.
    public init(table: String, matches: [Match]) {
        self.table = table
        self.matches = matches
    }
}

/// What the models make of an image, computed once: its caption and its image
/// embedding. Every mode's prompt follows from these two
/// (the interrogator's `interrogate(_ features:mode:options:)`), so one
/// image can be interrogated in all modes without captioning or embedding it
/// again, and features can be stored (they are `Codable`) and interrogated later
/// by an interrogator with the same models.
public struct ImageFeatures: Sendable, Codable, Equatable {
    /// The caption of the (first) image; nil when there is no caption model.
    public var caption: String?
    /// The L2-normalised image embedding (for several images, their normalised mean).
    public var embedding: [Float]

    /// Features from a caption and an image embedding.
    public init(caption: String?, embedding: [Float]) {
        self.caption = caption
        self.embedding = embedding
    }
}

/// An image prepared for the models (``Interrogator/prepare(_:captioning:embedding:)``):
/// the encoder's input and, when it is to be captioned, the caption model's.
public struct PreparedImage: Sendable {
    /// The encoder's input, `[3, H, W]`; nil when the image is not embedded.
    public let pixels: Tensor?
    /// The caption model's input; nil when the image is not captioned.
    public let caption: CaptionInput?

    /// What the caption model takes.
    public enum CaptionInput: Sendable {
        /// Prepared pixels `[3, H, W]` (a `PreparedImageCaptioning` model).
        case pixels(Tensor)
        /// The decoded image (a model that prepares its own input).
        case image(RGBImage)

        var pixels: Tensor? { if case let .pixels(tensor) = self { tensor } else { nil } }
        var image: RGBImage? { if case let .image(image) = self { image } else { nil } }
    }
}

/// The outcome of an interrogation (`Interrogator`'s `interrogate` calls).
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
public enum InterrogatorError: Error, LocalizedError, Equatable, CustomStringConvertible, Sendable {
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

    /// The same text as ``description``.
    public var errorDescription: String? { description }
}

extension Interrogator {
    /// The L2-normalised embedding of `images`: for several images, the mean
    /// of their normalised embeddings, normalised again (one prompt for all).
    /// - Throws: ``InterrogatorError/noImages``, the encoder's errors,
    ///   `NonFiniteOutputError` when the embedding is not finite.
    public func imageEmbedding(_ images: [RGBImage]) throws -> [Float] {
        guard !images.isEmpty else { throw InterrogatorError.noImages }
        let embedding = try encoder.imageEmbedding(images)
        guard embedding.allSatisfy(\.isFinite) else { throw NonFiniteOutputError(output: "the image embedding") }
        return embedding
    }

    /// The caption of `image`, reporting each generated token (a cancelled
    /// call stops between decoder steps).
    public func caption(_ image: RGBImage) throws -> String {
        guard let captioner else { throw InterrogatorError.noCaptionModel }
        return try captioner.caption(image, maxTokens: configuration.captionMaxLength) { done, total in
            try self.report(.captioning(token: done, maxTokens: total))
        }
    }

    /// The caption (when there is a caption model) and image embedding of
    /// `images`: everything any mode needs (one prompt for several images: the
    /// first is captioned, their embeddings averaged).
    public func features(of images: [RGBImage]) throws -> ImageFeatures {
        guard let first = images.first else { throw InterrogatorError.noImages }
        return ImageFeatures(caption: try captioner.map { _ in try caption(first) }, embedding: try imageEmbedding(images))
    }

    /// The features of each of `images` on its own, computed as one batch: the
    /// caption model captions them together (when `captioning` and there is one)
    /// and the encoder embeds them together. Each equals ``features(of:)`` of that
    /// image alone; batches make better use of the matrix products (a dataset run's
    /// throughput), at the memory of `images.count` images in flight.
    /// - Parameters:
    ///   - images: the images, each interrogated on its own.
    ///   - captioning: whether to caption them (false: captions are nil).
    /// - Returns: one ``ImageFeatures`` per image, in order.
    public func features(ofEach images: [RGBImage], captioning: Bool = true) throws -> [ImageFeatures] {
        try features(ofPrepared: images.map { try prepare($0, captioning: captioning, embedding: true) })
    }

    /// `image` through the encoder's image processor (when `embedding`) and,
    /// when `captioning` and the caption model can prepare images apart
    /// (`PreparedImageCaptioning`), through its processor: the models' inputs,
    /// fixed in size (a few MB) and computable on another thread while a batch runs.
    /// - Parameters:
    ///   - image: the decoded image.
    ///   - captioning: whether the image will be captioned.
    ///   - embedding: whether it will be embedded (every mode but caption mode
    ///     without a negative prompt needs that).
    /// - Returns: the prepared image.
    /// - Throws: the processors' errors.
    public func prepare(_ image: RGBImage, captioning: Bool, embedding: Bool) throws -> PreparedImage {
        let caption: PreparedImage.CaptionInput?
        switch (captioning, captioner) {
        case (false, _), (true, nil): caption = nil
        case let (true, model as any PreparedImageCaptioning): caption = .pixels(try model.imageProcessor(image))
        case (true, _): caption = .image(image)
        }
        return PreparedImage(pixels: embedding ? try encoder.imageProcessor(image) : nil, caption: caption)
    }

    /// The features of prepared images (``prepare(_:captioning:embedding:)``),
    /// each on its own, in one batch through each model; equal to ``features(of:)``
    /// of each image alone. Images prepared without captioning get no caption,
    /// without embedding an empty embedding (as caption mode does).
    /// - Parameter images: the prepared images.
    /// - Returns: one ``ImageFeatures`` per image, in order.
    /// - Throws: the models' errors; a cancellation from the call's progress.
    public func features(ofPrepared images: [PreparedImage]) throws -> [ImageFeatures] {
        guard !images.isEmpty else { return [] }
        var captions = [String?](repeating: nil, count: images.count)
        let captioned = images.indices.filter { images[$0].caption != nil }
        if let captioner, !captioned.isEmpty {
            let report: @Sendable (Int, Int) throws -> Void = { done, total in try self.report(.captioning(token: done, maxTokens: total)) }
            let maxTokens = configuration.captionMaxLength
            let texts: [String]
            if let prepared = captioner as? any PreparedImageCaptioning, case .pixels = images[captioned[0]].caption {
                texts = try prepared.captions(pixels: Tensor(stacking: captioned.map { images[$0].caption!.pixels! }),
                                              maxTokens: maxTokens, progress: report)
            } else {
                texts = try captioner.captions(captioned.map { images[$0].caption!.image! }, maxTokens: maxTokens, progress: report)
            }
            for (index, text) in zip(captioned, texts) { captions[index] = text }
        }
        var embeddings = [[Float]](repeating: [], count: images.count)
        let embedded = images.indices.filter { images[$0].pixels != nil }
        if !embedded.isEmpty {
            let d = encoder.embeddingDimension
            let rows = try encoder.imageEmbeddings(Tensor(stacking: embedded.map { images[$0].pixels! })).floats()
            for (row, index) in embedded.enumerated() { embeddings[index] = Array(rows[(row * d)..<((row + 1) * d)]) }
        }
        return zip(captions, embeddings).map { ImageFeatures(caption: $0, embedding: $1) }
    }

    /// Interrogates `images` (one prompt for all of them) in `mode`.
    public func interrogate(_ images: [RGBImage], mode: InterrogationMode, options: InterrogationOptions = .init()) throws -> InterrogationResult {
        try interrogate(images, modes: [mode], options: options)[0]
    }

    /// Interrogates `images` (one prompt for all of them) in each of `modes`,
    /// from one caption and one image embedding: the images are captioned (when
    /// a mode needs it and no subject is given) and embedded (unless only
    /// caption mode is asked for, without a negative prompt) once.
    public func interrogate(_ images: [RGBImage], modes: [InterrogationMode], options: InterrogationOptions = .init()) throws -> [InterrogationResult] {
        guard let first = images.first else { throw InterrogatorError.noImages }
        let caption = options.subject == nil && modes.contains(where: \.usesCaption) ? try self.caption(first) : nil
        let needsEmbedding = options.includeNegative || modes.contains { $0 != .caption }
        let embedding = needsEmbedding ? try imageEmbedding(images) : []
        let features = ImageFeatures(caption: caption, embedding: embedding)
        return try modes.map { try interrogate(features, mode: $0, options: options) }
    }

    /// Interrogates an image already captioned and embedded (``features(of:)``) in `mode`.
    /// - Throws: ``InterrogatorError/noCaptionModel`` when the mode needs a
    ///   caption and neither `features` nor `options.subject` has one.
    public func interrogate(_ features: ImageFeatures, mode: InterrogationMode, options: InterrogationOptions = .init()) throws -> InterrogationResult {
        var result = InterrogationResult(mode: mode)
        if mode.usesCaption {
            guard let caption = options.subject ?? features.caption else { throw InterrogatorError.noCaptionModel }
            result.caption = caption
        }
        if mode == .caption {
            result.prompt = result.caption
            if options.includeNegative { result.negativePrompt = try negativePrompt(image: features.embedding, maxFlavors: options.maxFlavors) }
            return result
        }
        let image = features.embedding
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
            result.analysis = try analysis(image: image, count: options.analysisCount)
        case .caption:
            break
        }
        if options.includeNegative && mode != .negative && mode != .analyze {
            result.negativePrompt = try negativePrompt(image: image, maxFlavors: options.maxFlavors)
        }
        return result
    }
}
