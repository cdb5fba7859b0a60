// The caption path of clip-interrogator 0.6.0 (BlipProcessor, then
// BlipForConditionalGeneration.generate, then
// processor.batch_decode(ids, skip_special_tokens=True)[0].strip()).
import Foundation
import NeuralCore

/// Image captioning as the reference interrogator does it: a
/// ``BlipForConditionalGeneration``, its WordPiece tokenizer and its image
/// processor, with prompts encoded like `BlipProcessor` and captions decoded with
/// `skip_special_tokens` and stripped of surrounding whitespace.
public struct BlipCaptioner: PreparedImageCaptioning {
    /// The model.
    public let model: BlipForConditionalGeneration
    /// The tokenizer (`vocab.txt` / `tokenizer.json` of the checkpoint).
    public let tokenizer: BertTokenizer
    /// The checkpoint's image processor.
    public let processor: BlipImageProcessor
    /// Decoding settings for ``caption(_:maxTokens:progress:)`` (greedy by default,
    /// as the reference); its `maxTokens` replaces ``GenerationOptions/maxNewTokens``.
    public var options: GenerationOptions
    /// An optional text prefix such as "a picture of", for ``caption(_:maxTokens:progress:)``.
    public var prompt: String?

    /// Assembles a captioner from its parts.
    public init(model: BlipForConditionalGeneration, tokenizer: BertTokenizer, processor: BlipImageProcessor,
                options: GenerationOptions = GenerationOptions(), prompt: String? = nil) {
        self.model = model
        self.tokenizer = tokenizer
        self.processor = processor
        self.options = options
        self.prompt = prompt
    }

    /// Loads the model (strictly), the tokenizer and the image processor from a
    /// checkpoint directory, opened once.
    /// - Throws: `CheckpointError`, `WeightError`, ``BertTokenizerError``, the
    ///   preprocessor config's errors; `CheckpointError.invalidValue(path:key:reason:)`
    ///   when the tokenizer knows fewer ids than the model writes words with
    ///   (`vocab_size`, less the decoder tokens from `bos_token_id` on): their
    ///   words would vanish from captions.
    public init(directory: URL, options: GenerationOptions = GenerationOptions(), prompt: String? = nil) throws {
        let checkpoint = try Checkpoint(directory: directory)
        let model = try BlipForConditionalGeneration(checkpoint: checkpoint)
        let tokenizer = try BertTokenizer(directory: checkpoint.directory)
        // BLIP appends its decoder tokens ([DEC] = bos_token_id, [ENC]) after the
        // WordPiece vocabulary, and the released tokenizers do not list them; every
        // id below them is a word a caption may hold and the tokenizer must know.
        let text = model.configuration.textConfig
        let wordIds = min(text.vocabSize, text.bosTokenId.map { max($0, 0) } ?? text.vocabSize)
        guard tokenizer.vocabularySize >= wordIds else {
            throw CheckpointError.invalidValue(
                path: checkpoint.directory.appendingPathComponent("config.json").path, key: "text_config.vocab_size",
                reason: "the model writes token ids up to \(wordIds - 1), but the tokenizer files in the folder "
                    + "(vocab.txt, tokenizer.json, added tokens) know only \(tokenizer.vocabularySize): captions would lose words")
        }
        try self.init(model: model, tokenizer: tokenizer,
                      processor: BlipImageProcessor(checkpoint: checkpoint, vision: model.configuration.visionConfig),
                      options: options, prompt: prompt)
    }

    /// The decoder prompt for a text prompt: `[CLS] prompt [SEP]` with the first id
    /// replaced by the config's `bos_token_id` and the `[SEP]` dropped; `[bos]`
    /// without a prompt.
    /// - Throws: ``BertTokenizerError``.
    public func decoderPrompt(_ prompt: String?) throws -> [Int] {
        try tokenizer.captionPrefix(prompt: prompt, bosTokenId: model.configuration.textConfig.bosTokenId)
    }

    /// Generated ids (prompt included) per image of `pixelValues` `[B, 3, S, S]`;
    /// see ``BlipForConditionalGeneration/generate(pixelValues:decoderPrompt:options:)``.
    /// - Throws: ``ModelInputError``, ``GenerationError``, ``BertTokenizerError``.
    public func generate(pixelValues: Tensor, prompt: String? = nil,
                         options: GenerationOptions = GenerationOptions()) throws -> [[Int]] {
        try model.generate(pixelValues: pixelValues, decoderPrompt: decoderPrompt(prompt), options: options)
    }

    /// One caption per image: the generated ids decoded with special tokens skipped
    /// and surrounding whitespace trimmed (a prompt's words stay in the caption).
    /// - Throws: ``ModelInputError``, ``GenerationError``, ``BertTokenizerError``.
    public func caption(pixelValues: Tensor, prompt: String? = nil,
                        options: GenerationOptions = GenerationOptions()) throws -> [String] {
        try generate(pixelValues: pixelValues, prompt: prompt, options: options).map(decode)
    }

    /// `batch_decode([ids], skip_special_tokens=True)[0].strip()`.
    public func decode(_ ids: [Int]) -> String {
        tokenizer.decode(ids, skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The caption of `image` with at most `maxTokens` new tokens, with this
    /// captioner's ``options`` and ``prompt``.
    /// - Parameters:
    ///   - image: the image.
    ///   - maxTokens: the most new tokens (replaces the options' `maxNewTokens`).
    ///   - progress: receives (decoder steps so far, `maxTokens`) after each
    ///     step; what it throws stops generation and is rethrown.
    /// - Returns: the caption.
    /// - Throws: ``ImagePreprocessingError``, ``ModelInputError``, ``GenerationError``, `progress`'s errors.
    public func caption(_ image: RGBImage, maxTokens: Int, progress: (@Sendable (Int, Int) throws -> Void)?) throws -> String {
        try captions([image], maxTokens: maxTokens, progress: progress)[0]
    }

    /// Captions for `images` in one batch: the vision tower runs once over all
    /// of them and the decoder steps them together, each image stopping on its own
    /// (see ``BlipForConditionalGeneration/generate(pixelValues:decoderPrompt:options:)``);
    /// each equals the caption of that image alone.
    /// - Parameters:
    ///   - images: the images.
    ///   - maxTokens: the most new tokens (replaces the options' `maxNewTokens`).
    ///   - progress: receives (decoder steps so far, `maxTokens`) after each
    ///     step; what it throws stops generation and is rethrown.
    /// - Returns: one caption per image, in order.
    /// - Throws: ``ImagePreprocessingError``, ``ModelInputError``, ``GenerationError``, `progress`'s errors.
    public func captions(_ images: [RGBImage], maxTokens: Int, progress: (@Sendable (Int, Int) throws -> Void)?) throws -> [String] {
        guard !images.isEmpty else { return [] }
        return try captions(pixels: processor.batch(images), maxTokens: maxTokens, progress: progress)
    }

    /// The BLIP image processor.
    public var imageProcessor: any ImageProcessor { processor }

    /// Captions for images already through ``processor`` (`[B, 3, H, W]`), in one batch.
    /// - Parameters:
    ///   - pixels: the prepared images.
    ///   - maxTokens: the most new tokens (replaces the options' `maxNewTokens`).
    ///   - progress: receives (decoder steps so far, `maxTokens`) after each
    ///     step; what it throws stops generation and is rethrown.
    /// - Returns: one caption per image, in order.
    /// - Throws: ``ModelInputError``, ``GenerationError``, `progress`'s errors.
    public func captions(pixels: Tensor, maxTokens: Int, progress: (@Sendable (Int, Int) throws -> Void)?) throws -> [String] {
        var options = self.options
        options.maxNewTokens = maxTokens
        var trace = GenerationTrace { calls in try progress?(min(calls, maxTokens), maxTokens) }
        return try model.generate(pixelValues: pixels, decoderPrompt: decoderPrompt(prompt), options: options, trace: &trace).map(decode)
    }
}
