import NeuralCore

/// The feed-forward block of CLIP's and BLIP's vision encoder layers (`mlp`):
/// `fc2(act(fc1(x)))`.
public struct MLP: Sendable {
    /// `fc1`, hidden → intermediate.
    public let fc1: Linear
    /// `fc2`, intermediate → hidden.
    public let fc2: Linear
    /// The activation between them (`hidden_act`).
    public let activation: Activation

    /// Loads `fc1` and `fc2`.
    public init(_ weights: WeightScope, hiddenSize: Int, intermediateSize: Int, activation: Activation) throws {
        fc1 = try Linear(weights.scoped("fc1"), inFeatures: hiddenSize, outFeatures: intermediateSize)
        fc2 = try Linear(weights.scoped("fc2"), inFeatures: intermediateSize, outFeatures: hiddenSize)
        self.activation = activation
    }

    /// Applies the block over the last dimension.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var hidden = fc1(x)
        hidden.withUnsafeMutableFloats { activate($0.baseAddress!, count: $0.count, activation) }
        return fc2(hidden)
    }
}
