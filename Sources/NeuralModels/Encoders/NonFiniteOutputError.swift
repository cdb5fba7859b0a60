import Foundation
import NeuralCore

/// A model produced values that are not finite numbers (NaN or ±infinity): its
/// weights or its preprocessing settings are broken (a NaN weight, an `image_std`
/// of 0, …). Checked where outputs leave a model, so nothing computed from them
/// (a ranking, a caption, a prompt) is ever returned.
public struct NonFiniteOutputError: Error, LocalizedError, CustomStringConvertible, Sendable, Equatable {
    /// Which output, e.g. "CLIP image embedding" or "BLIP caption logits".
    public let output: String

    /// An error about `output`.
    public init(output: String) {
        self.output = output
    }

    /// `"<output> holds NaN or infinite values …"`.
    public var description: String {
        "\(output) holds NaN or infinite values: the model's weights or preprocessing settings are broken"
    }

    /// The same as ``description``.
    public var errorDescription: String? { description }

    /// Throws an error about `output` unless every element of `tensor` is finite.
    public static func check(_ tensor: Tensor, _ output: @autoclosure () -> String) throws {
        guard tensor.isFinite else { throw NonFiniteOutputError(output: output()) }
    }
}
