import Foundation
import NeuralCore
import NeuralModels

/// BLIP as an interrogator's caption model: the checkpoint's own image
/// preprocessing (`preprocessor_config.json`), then generation and decoding as
/// the reference does it.
public struct BlipImageCaptioner: ImageCaptioning {
    /// The model and tokenizer.
    public let captioner: BlipCaptioner
    /// The checkpoint's image preprocessing.
    public let preprocessing: ImagePreprocessingConfig
    /// Decoding settings (greedy by default, as the reference); `maxNewTokens` is
    /// replaced by the interrogator's `captionMaxLength`.
    public var options: GenerationOptions
    /// An optional text prefix such as "a picture of".
    public var prompt: String?

    /// Loads the BLIP checkpoint in `directory`.
    public init(directory: URL, options: GenerationOptions = GenerationOptions(), prompt: String? = nil) throws {
        captioner = try BlipCaptioner(directory: directory)
        let file = directory.appendingPathComponent("preprocessor_config.json")
        if FileManager.default.fileExists(atPath: file.path) {
            preprocessing = try ImagePreprocessingConfig(contentsOf: file)
        } else {
            var defaults = ImagePreprocessingConfig(blip: true)
            let size = captioner.model.configuration.visionConfig.imageSize
            defaults.size = ImageSizeSpec(height: size, width: size)
            preprocessing = defaults
        }
        self.options = options
        self.prompt = prompt
    }

    /// The caption of `image` with at most `maxTokens` new tokens.
    public func caption(_ image: RGBImage, maxTokens: Int, progress: (@Sendable (Int, Int) -> Void)?) throws -> String {
        let pixels = try ImagePreprocessing.huggingFace(image, config: preprocessing)
        let side = captioner.model.configuration.visionConfig.imageSize
        let (height, width) = preprocessing.outputSize ?? (side, side)
        var options = self.options
        options.maxNewTokens = maxTokens
        var trace = GenerationTrace { calls in progress?(min(calls, maxTokens), maxTokens) }
        let ids = try captioner.model.generate(pixelValues: Tensor(shape: [1, 3, height, width], scalars: pixels),
                                               decoderPrompt: captioner.decoderPrompt(prompt), options: options, trace: &trace)
        return captioner.decode(ids[0])
    }
}

extension Interrogator {
    /// Loads an interrogator from local Hugging Face checkpoint directories: a
    /// `CLIPModel` (with `vocab.json`, `merges.txt` and optionally
    /// `preprocessor_config.json`) and, unless nil, a BLIP captioning model.
    public static func load(clipDirectory: URL, captionDirectory: URL?, configuration: InterrogatorConfiguration,
                            captionOptions: GenerationOptions = GenerationOptions(),
                            customTables: [(name: String, labels: [String])] = []) throws -> Interrogator {
        let clip = try CLIPModel(directory: clipDirectory)
        let tokenizer = try CLIPTokenizer(directory: clipDirectory, contextLength: clip.configuration.textConfig.maxPositionEmbeddings)
        let preprocessing = try CLIPImagePreprocessing(checkpoint: clipDirectory, model: clip)
        let captioner = try captionDirectory.map { try BlipImageCaptioner(directory: $0, options: captionOptions) }
        return Interrogator(clip: clip, tokenizer: tokenizer, clipPreprocessing: preprocessing, captioner: captioner,
                                configuration: configuration, customTables: customTables)
    }
}
