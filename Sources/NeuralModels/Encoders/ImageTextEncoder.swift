import NeuralCore

/// Prepares decoded images for a vision tower, as the model's reference
/// pipeline does (resize, crop, rescale, normalise).
public protocol ImageProcessor: Sendable {
    /// `[3, H, W]` floats for `image`.
    /// - Throws: when the image cannot be processed (a size the settings reject).
    func callAsFunction(_ image: RGBImage) throws -> Tensor
}

extension ImageProcessor {
    /// `[B, 3, H, W]` floats for `images`, one processed image after another.
    /// - Throws: the processor's errors; ``ModelInputError/imageShape(found:expected:)``
    ///   when the images come out in different shapes.
    public func batch(_ images: [RGBImage]) throws -> Tensor {
        try Tensor(stacking: images.map { try self($0) })
    }
}

extension Tensor {
    /// `[B, …]`: `tensors` (of one shape) one after another (a batch of
    /// processed images); `[0]` for none.
    /// - Throws: ``ModelInputError/imageShape(found:expected:)`` when the shapes differ.
    public init(stacking tensors: [Tensor]) throws {
        guard let shape = tensors.first?.shape else {
            self.init(zeros: [0])
            return
        }
        for tensor in tensors where tensor.shape != shape {
            throw ModelInputError.imageShape(found: tensor.shape, expected: shape)
        }
        let size = shape.reduce(1, *)
        self.init(shape: [tensors.count] + shape) { out in
            for (i, tensor) in tensors.enumerated() { tensor.copyFloats(into: out + i * size) }
        }
    }
}

/// A model that embeds images and texts in one space, so that a text's cosine
/// similarity with an image says how well it describes it (CLIP; SigLIP or an
/// open_clip ConvNeXt would conform the same way). An interrogator holds its
/// encoder as `any ImageTextEncoder` and ranks labels with it.
///
/// Conformers bring their own tokenizer and image processor: everything from a
/// string or an ``RGBImage`` to an embedding is the encoder's business.
public protocol ImageTextEncoder: Sendable {
    /// The width of the shared embedding space.
    var embeddingDimension: Int { get }
    /// The token budget: most tokens a text may have, start and end tokens
    /// included (prompts are cut to fit it).
    var contextLength: Int { get }
    /// The image processor ``imageEmbeddings(_:)`` expects its pixels from.
    var imageProcessor: any ImageProcessor { get }

    /// The token ids the text tower reads for `text`: start and end tokens
    /// included, truncated to ``contextLength`` with the end token kept last.
    func tokenize(_ text: String) -> [Int]
    /// L2-normalised embeddings `[B, D]` of processed `pixels` `[B, 3, H, W]`.
    /// - Throws: ``ModelInputError`` for pixels of the wrong shape.
    func imageEmbeddings(_ pixels: Tensor) throws -> Tensor
    /// L2-normalised embeddings `[N, D]` of tokenised texts (from ``tokenize(_:)``).
    /// - Throws: ``ModelInputError`` for unknown ids or overlong texts.
    func textEmbeddings(_ tokens: [[Int]]) throws -> Tensor
}

/// An optional capability of an ``ImageTextEncoder``: embedding many texts that
/// share a first part (the chain search's "current prompt, candidate" texts)
/// faster than one by one, by computing the shared tokens once.
public protocol PrefixSharingTextEncoder: ImageTextEncoder {
    /// ``ImageTextEncoder/textEmbeddings(_:)`` of `tokens`, most of which start
    /// with `prefix` (token ids without the end token). Texts that do not (a
    /// tokenisation that merged across the boundary) are still embedded
    /// correctly. Equal to ``ImageTextEncoder/textEmbeddings(_:)`` up to float
    /// rounding.
    /// - Returns: the embeddings `[N, D]` and what computing them cost.
    /// - Throws: ``ModelInputError`` for unknown ids or overlong texts.
    func textEmbeddings(_ tokens: [[Int]], sharingPrefix prefix: [Int]) throws -> (embeddings: Tensor, cost: TextEncodingCost)
}

/// The work of embedding many texts at once: how many token positions a
/// one-by-one encoding would run through the text tower, and how many were run.
public struct TextEncodingCost: Sendable, Equatable {
    /// The texts embedded.
    public var texts: Int
    /// Their tokens, each text counted in full (start and end tokens included).
    public var tokens: Int
    /// Token positions actually run through the tower (a shared prefix and
    /// shared continuations counted once).
    public var tokensEncoded: Int
    /// Positions saved by sharing: ``tokens`` minus ``tokensEncoded``.
    public var tokensShared: Int { tokens - tokensEncoded }

    /// A record of `texts` texts of `tokens` tokens in all, `tokensEncoded` of which ran.
    public init(texts: Int = 0, tokens: Int = 0, tokensEncoded: Int = 0) {
        self.texts = texts
        self.tokens = tokens
        self.tokensEncoded = tokensEncoded
    }

    /// Both records together.
    public static func + (lhs: TextEncodingCost, rhs: TextEncodingCost) -> TextEncodingCost {
        TextEncodingCost(texts: lhs.texts + rhs.texts, tokens: lhs.tokens + rhs.tokens, tokensEncoded: lhs.tokensEncoded + rhs.tokensEncoded)
    }
}

extension ImageTextEncoder {
    /// L2-normalised embeddings `[N, D]` of `texts`.
    /// - Throws: ``ModelInputError``.
    public func textEmbeddings(texts: [String]) throws -> Tensor {
        try textEmbeddings(texts.map(tokenize))
    }

    /// The L2-normalised embedding of `images`: for one image its embedding; for
    /// several, the mean of their embeddings normalised again (one prompt for all).
    /// - Throws: the processor's errors, ``ModelInputError``.
    public func imageEmbedding(_ images: [RGBImage]) throws -> [Float] {
        let embeddings = try imageEmbeddings(imageProcessor.batch(images)).floats()
        let d = embeddingDimension
        var mean = [Float](repeating: 0, count: d)
        for i in 0..<images.count { for c in 0..<d { mean[c] += embeddings[i * d + c] } }
        if images.count > 1 { mean.withUnsafeMutableBufferPointer { l2NormalizeRows($0.baseAddress!, rows: 1, cols: d) } }
        return mean
    }

    /// Cosine similarity of each of `texts` with `image`, an L2-normalised image
    /// embedding.
    /// - Throws: ``ModelInputError``.
    public func similarities(_ texts: [String], to image: [Float]) throws -> [Float] {
        rowDotProducts(try textEmbeddings(texts: texts), image)
    }

    /// Whether `text` fills the whole token budget (clip-interrogator's
    /// `_prompt_at_max_len`).
    public func fillsContext(_ text: String) -> Bool {
        tokenize(text).count >= contextLength
    }
}
