/// A model that writes a caption for an image (BLIP; a BLIP-2, GIT or
/// Florence-style captioner would conform the same way). An interrogator holds
/// its caption model as `any ImageCaptioning`.
public protocol ImageCaptioning: Sendable {
    /// A caption for `image` with at most `maxTokens` new tokens; `progress`
    /// receives (tokens generated, `maxTokens`) as generation proceeds.
    /// - Throws: the model's errors (``ModelInputError``, ``GenerationError``, …).
    func caption(_ image: RGBImage, maxTokens: Int, progress: (@Sendable (Int, Int) -> Void)?) throws -> String

    /// Captions for several images at once (a batch through the model where it
    /// can), each equal to ``caption(_:maxTokens:progress:)`` of that image alone;
    /// `progress` receives (decoder steps done, `maxTokens`).
    /// - Throws: the model's errors.
    func captions(_ images: [RGBImage], maxTokens: Int, progress: (@Sendable (Int, Int) -> Void)?) throws -> [String]
}

extension ImageCaptioning {
    /// One image at a time.
    public func captions(_ images: [RGBImage], maxTokens: Int, progress: (@Sendable (Int, Int) -> Void)?) throws -> [String] {
        try images.map { try caption($0, maxTokens: maxTokens, progress: progress) }
    }
}
