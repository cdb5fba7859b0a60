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
}
