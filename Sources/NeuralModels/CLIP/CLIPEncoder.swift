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
    /// The chain search asks for one prefix batch after batch, and the next step's
    /// prefix is this one and a phrase, so the last prefix's cache is kept: the
    /// same tokens again reuse it, a longer prompt starts from its whole blocks
    /// (``CLIPTextTransformer/prefixCache(_:extending:)``: the same bits as a new
    /// cache). The cost counts only the prefix tokens that ran.
    public func textEmbeddings(_ tokens: [[Int]], sharingPrefix prefix: [Int]) throws -> (embeddings: Tensor, cost: TextEncodingCost) {
        let (cache, encoded) = try prefixCache(prefix)
        var (features, cost) = try model.textFeaturesAndCost(tokens, continuing: cache)
        cost.tokensEncoded -= prefix.count - encoded
        let embeddings = normalizedRows(features)
        try NonFiniteOutputError.check(embeddings, "CLIP text embedding")
        return (embeddings, cost)
    }

    /// `prefix`'s cache, from the last one where it can (made at the same thread
    /// count, whose products may split differently), and how many of its tokens ran.
    private func prefixCache(_ prefix: [Int]) throws -> (cache: CLIPTextPrefixCache, encoded: Int) {
        let threads = Threading.threadCount
        let last = lastPrefix.entry.withLock { $0 }.flatMap { $0.threads == threads ? $0.cache : nil }
        if let last, last.tokens == prefix { return (last, 0) }
        let (cache, encoded) = try model.textModel.prefixCacheAndWork(prefix, extending: last)
        lastPrefix.entry.withLock { $0 = (threads, cache) }
        return (cache, encoded)
    }
}

/// One prefix cache shared by copies of a ``CLIPEncoder`` (and the threads that
/// use them); computed outside the lock, so different prefixes on different
/// threads do not wait for each other.
private final class LastPrefixCache: Sendable {
    let entry = Mutex<(threads: Int, cache: CLIPTextPrefixCache)?>(nil)
}
