import Foundation
import NeuralCore
import Synchronization

/// A CLIP checkpoint as an ``ImageTextEncoder``: the model, its open_clip-exact
/// tokenizer and its image processor, loaded from one Hugging Face checkpoint
/// folder. The first backbone an interrogator can hold.
public struct CLIPEncoder: PrefixSharingTextEncoder {
    /// The model.
    public let model: CLIPModel
    /// The tokenizer (the checkpoint's `vocab.json` and `merges.txt`).
    public let tokenizer: CLIPTokenizer
    /// The image processor.
    public let processor: CLIPImageProcessor
    /// The last prefix run through the text tower, for the next texts that share it.
    private let lastPrefix = LastPrefixCache()

    /// Assembles an encoder from its parts.
    public init(model: CLIPModel, tokenizer: CLIPTokenizer, processor: CLIPImageProcessor) {
        self.model = model
        self.tokenizer = tokenizer
        self.processor = processor
    }

    /// Loads the checkpoint in `directory` (a Hugging Face `CLIPModel` with
    /// `vocab.json`, `merges.txt` and optionally `preprocessor_config.json`),
    /// opening it once for the model, the tokenizer and the processor.
    /// - Throws: `CheckpointError`, `WeightError`, the tokenizer's and the
    ///   preprocessor config's errors.
    public init(directory: URL) throws {
        let checkpoint = try Checkpoint(directory: directory)
        let model = try CLIPModel(checkpoint: checkpoint)
        try self.init(model: model,
                      tokenizer: CLIPTokenizer(directory: checkpoint.directory,
                                               contextLength: model.configuration.textConfig.maxPositionEmbeddings),
                      processor: CLIPImageProcessor(checkpoint: checkpoint, vision: model.configuration.visionConfig))
    }

    /// The projection width.
    public var embeddingDimension: Int { model.embeddingDimension }
    /// The tokenizer's context (77 for every released CLIP).
    public var contextLength: Int { tokenizer.contextLength }
    /// The CLIP image processor.
    public var imageProcessor: any ImageProcessor { processor }

    /// open_clip's ids for `text`, start and end tokens included, unpadded.
    public func tokenize(_ text: String) -> [Int] {
        tokenizer.encodeUnpadded(text).map { Int($0) }
    }

    /// ``CLIPModel/imageEmbeddings(_:)``.
    /// - Throws: ``ModelInputError``; ``NonFiniteOutputError`` when the embeddings
    ///   are not finite.
    public func imageEmbeddings(_ pixels: Tensor) throws -> Tensor {
        let embeddings = try model.imageEmbeddings(pixels)
        try NonFiniteOutputError.check(embeddings, "CLIP image embedding")
        return embeddings
    }

    /// ``CLIPModel/textEmbeddings(_:)``.
    /// - Throws: ``ModelInputError``; ``NonFiniteOutputError`` when the embeddings
    ///   are not finite.
    public func textEmbeddings(_ tokens: [[Int]]) throws -> Tensor {
        let embeddings = try model.textEmbeddings(tokens)
        try NonFiniteOutputError.check(embeddings, "CLIP text embedding")
        return embeddings
    }

    /// Runs `prefix` through the text tower once and the texts' remaining tokens
    /// as one token tree against its cached keys and values
    /// (``CLIPModel/textFeaturesAndCost(_:continuing:)``).
    /// The chain search asks for one prefix batch after batch, so the last
    /// prefix's cache is kept and reused when the same tokens come again at the
    /// same thread count (a recomputation would give the same bits); the cost
    /// then counts the prefix as not encoded.
    public func textEmbeddings(_ tokens: [[Int]], sharingPrefix prefix: [Int]) throws -> (embeddings: Tensor, cost: TextEncodingCost) {
        let (cache, reused) = try prefixCache(prefix)
        var (features, cost) = try model.textFeaturesAndCost(tokens, continuing: cache)
        if reused { cost.tokensEncoded -= prefix.count }
        let embeddings = normalizedRows(features)
        try NonFiniteOutputError.check(embeddings, "CLIP text embedding")
        return (embeddings, cost)
    }

    /// `prefix`'s cache: the last one when it was made for the same tokens at
    /// the same thread count (`reused`), otherwise a new one, which becomes the last.
    private func prefixCache(_ prefix: [Int]) throws -> (cache: CLIPTextPrefixCache, reused: Bool) {
        let threads = Threading.threadCount
        if let last = lastPrefix.entry.withLock({ $0 }), last.threads == threads, last.cache.tokens == prefix {
            return (last.cache, true)
        }
        let cache = try model.textModel.prefixCache(prefix)
        lastPrefix.entry.withLock { $0 = (threads, cache) }
        return (cache, false)
    }
}

/// One prefix cache shared by copies of a ``CLIPEncoder`` (and the threads that
/// use them); computed outside the lock, so different prefixes on different
/// threads do not wait for each other.
private final class LastPrefixCache: Sendable {
    let entry = Mutex<(threads: Int, cache: CLIPTextPrefixCache)?>(nil)
}
