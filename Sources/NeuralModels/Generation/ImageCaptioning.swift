import NeuralCore

/// A model that writes a caption for an image (BLIP; a BLIP-2, GIT or
/// Florence-style captioner would conform the same way). An interrogator holds
/// its caption model as `any ImageCaptioning`.
public protocol ImageCaptioning: Sendable {
    /// A caption for `image` with at most `maxTokens` new tokens.
    /// - Parameters:
    ///   - image: the image.
    ///   - maxTokens: the most new tokens the caption may have.
    ///   - progress: receives (tokens generated, `maxTokens`) after each decoder
    ///     step; an error it throws (a cancellation) stops generation there and
    ///     is rethrown.
    /// - Returns: the caption.
    /// - Throws: the model's errors (``ModelInputError``, ``GenerationError``, …)
    ///   and `progress`'s.
    func caption(_ image: RGBImage, maxTokens: Int, progress: (@Sendable (Int, Int) throws -> Void)?) throws -> String

    /// Captions for several images at once (a batch through the model where it
    /// can), each equal to ``caption(_:maxTokens:progress:)`` of that image alone.
    /// - Parameters:
    ///   - images: the images.
    ///   - maxTokens: the most new tokens each caption may have.
    ///   - progress: receives (decoder steps done, `maxTokens`); an error it
    ///     throws stops generation and is rethrown.
    /// - Returns: one caption per image, in order.
    /// - Throws: the model's errors and `progress`'s.
    func captions(_ images: [RGBImage], maxTokens: Int, progress: (@Sendable (Int, Int) throws -> Void)?) throws -> [String]
}

extension ImageCaptioning {
    /// One image at a time, through ``caption(_:maxTokens:progress:)``.
    /// - Parameters:
    ///   - images: the images.
    ///   - maxTokens: the most new tokens each caption may have.
    ///   - progress: passed to each caption.
    /// - Returns: one caption per image, in order.
    public func captions(_ images: [RGBImage], maxTokens: Int, progress: (@Sendable (Int, Int) throws -> Void)?) throws -> [String] {
        try images.map { try caption($0, maxTokens: maxTokens, progress: progress) }
    }
}

/// An optional capability of an ``ImageCaptioning`` model: its image
/// preparation can run apart from the model (on another thread, ahead of it), and
/// prepared images caption in one batch. Dataset runs keep only prepared images
/// in flight, which are small and of a fixed size, instead of decoded ones.
public protocol PreparedImageCaptioning: ImageCaptioning {
    /// What turns an image into the model's input (`[3, H, W]`).
    var imageProcessor: any ImageProcessor { get }
    /// Captions for prepared images `pixels` `[B, 3, H, W]` (from
    /// ``imageProcessor``), each equal to the caption of that image alone.
    /// - Parameters:
    ///   - pixels: the prepared images.
    ///   - maxTokens: the most new tokens each caption may have.
    ///   - progress: receives (decoder steps done, `maxTokens`); an error it
    ///     throws stops generation and is rethrown.
    /// - Returns: one caption per image, in order.
    /// - Throws: the model's errors and `progress`'s.
    func captions(pixels: Tensor, maxTokens: Int, progress: (@Sendable (Int, Int) throws -> Void)?) throws -> [String]
}
