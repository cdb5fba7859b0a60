/// A model that writes a caption for an image (BLIP; a BLIP-2, GIT or
/// Florence-style captioner would conform the same way). An interrogator holds
/// its caption model as `any ImageCaptioning`.
public protocol ImageCaptioning: Sendable {
    /// A caption for `image` with at most `maxTokens` new tokens; `progress`
    /// receives (tokens generated, `maxTokens`) as generation proceeds.
    /// - Throws: the model's errors (``ModelInputError``, ``GenerationError``, …).
    func caption(_ image: RGBImage, maxTokens: Int, progress: (@Sendable (Int, Int) -> Void)?) throws -> String
}
