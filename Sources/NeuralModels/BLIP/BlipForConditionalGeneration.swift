// Port of transformers/models/blip/modeling_blip.py: BlipForConditionalGeneration
// (loading, generate), and of the caption path of clip-interrogator 0.6.0
// (processor.batch_decode(ids, skip_special_tokens=True)[0].strip()).
import Foundation
import NeuralCore

/// BLIP's image-captioning model (`Salesforce/blip-image-captioning-*`): the
/// vision encoder (`vision_model.*`) and the caption decoder (`text_decoder.*`).
public struct BlipForConditionalGeneration: Sendable {
    /// The model's config.
    public let configuration: BlipConfiguration
    /// `vision_model`.
    public let visionModel: BlipVisionModel
    /// `text_decoder`.
    public let textDecoder: BlipTextDecoder

    /// Loads both parts from the checkpoint's root scope.
    /// - Throws: `WeightError` naming the full key.
    public init(_ weights: WeightScope, configuration: BlipConfiguration) throws {
        self.configuration = configuration
        visionModel = try BlipVisionModel(weights.scoped("vision_model"), configuration.visionConfig)
        textDecoder = try BlipTextDecoder(weights.scoped("text_decoder"), configuration.textConfig)
    }

    /// Loads a Hugging Face checkpoint directory (`config.json`,
    /// `model.safetensors` or a sharded index) strictly: every tensor the model
    /// needs must be present with its shape, and every tensor in the files must be
    /// used, except `position_ids` buffers and the tied copies
    /// `text_decoder.cls.predictions.decoder.{weight,bias}` (consumed when present).
    /// - Throws: `CheckpointError`, `WeightError`.
    public init(directory: URL) throws {
        try self.init(checkpoint: Checkpoint(directory: directory))
    }

    /// Loads the model from an opened checkpoint, strictly (see ``init(directory:)``).
    /// - Throws: `CheckpointError`, `WeightError`.
    public init(checkpoint: Checkpoint) throws {
        try self.init(WeightScope(checkpoint.weights), configuration: checkpoint.json(BlipConfiguration.self))
        checkpoint.weights.markConsumed { $0.hasSuffix("position_ids") }
        try checkpoint.weights.verifyAllConsumed()
    }

    /// The decoder prompt for unconditional captioning: `[bos]`.
    public var defaultPrompt: [Int] {
        [configuration.textConfig.bosTokenId ?? 0]
    }

    /// Generates captions for `pixelValues` `[B, 3, S, S]` as
    /// `BlipForConditionalGeneration.generate` does: the vision model runs once,
    /// every decoder layer's cross-attention keys/values over each image are
    /// computed once, and decoding starts from `decoderPrompt` (already in decoder
    /// form, e.g. ``BertTokenizer/captionPrefix(prompt:bosTokenId:)``; default
    /// `[bos]`), stopping at `sep_token_id`.
    ///
    /// Returns one id sequence per image, prompt included, all of one length as
    /// transformers' output tensor: greedy rows that finished early are padded with
    /// `pad_token_id`; beam-search rows with `pad_token_id or sep_token_id`.
    /// The search is the generic one over ``IncrementalDecoder``
    /// (``IncrementalDecoder/generate(context:plan:trace:)``).
    /// - Parameters:
    ///   - pixelValues: preprocessed images `[B, 3, S, S]`.
    ///   - decoderPrompt: the decoder prompt ids; nil for ``defaultPrompt``.
    ///   - options: decoding settings (greedy, 32 new tokens by default).
    /// - Throws: ``ModelInputError``, ``GenerationError``.
    public func generate(pixelValues: Tensor, decoderPrompt: [Int]? = nil,
                         options: GenerationOptions = GenerationOptions()) throws -> [[Int]] {
        var trace = GenerationTrace()
        return try generate(pixelValues: pixelValues, decoderPrompt: decoderPrompt, options: options, trace: &trace)
    }

    /// ``generate(pixelValues:decoderPrompt:options:)`` that also records the
    /// decoder work in `trace`.
    /// - Parameters:
    ///   - pixelValues: preprocessed images `[B, 3, S, S]`.
    ///   - decoderPrompt: the decoder prompt ids; nil for ``defaultPrompt``.
    ///   - options: decoding settings.
    ///   - trace: records every decoder call and reports it to its `onStep`.
    /// - Throws: ``ModelInputError``, ``GenerationError``.
    public func generate(pixelValues: Tensor, decoderPrompt: [Int]? = nil, options: GenerationOptions,
                         trace: inout GenerationTrace) throws -> [[Int]] {
        let (imageEmbeds, _) = try visionModel.encode(pixelValues)
        return try generate(imageEmbeds: imageEmbeds, decoderPrompt: decoderPrompt, options: options, trace: &trace)
    }

    /// Generation from precomputed image embeddings `[B, T, C]` (the vision
    /// model's output). The options are checked before any decoder work.
    /// - Parameters:
    ///   - imageEmbeds: the vision model's output `[B, T, C]`, B ≥ 1.
    ///   - decoderPrompt: the decoder prompt ids; nil for ``defaultPrompt``.
    ///   - options: decoding settings.
    ///   - trace: records every decoder call and reports it to its `onStep`.
    /// - Throws: ``ModelInputError``, ``GenerationError``.
    public func generate(imageEmbeds: Tensor, decoderPrompt: [Int]? = nil, options: GenerationOptions,
                         trace: inout GenerationTrace) throws -> [[Int]] {
        let plan = try textDecoder.plan(prompt: decoderPrompt ?? defaultPrompt, options: options)
        guard imageEmbeds.shape.count == 3, imageEmbeds.shape[0] > 0 else {
            throw ModelInputError.imageShape(found: imageEmbeds.shape, expected: [1, visionModel.config.tokenCount, visionModel.config.hiddenSize])
        }
        return try textDecoder.generate(context: textDecoder.imageContext(imageEmbeds), plan: plan, trace: &trace)
    }
}
