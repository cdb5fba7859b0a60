import NeuralCore

/// `nn.LayerNorm` over the last dimension, with `weight` and `bias` from its scope
/// and `eps` from the model's config.
public struct LayerNorm: Sendable {
    /// `[size]`, F32.
    public let weight: Tensor
    /// `[size]`, F32.
    public let bias: Tensor
    /// The normalised width.
    public let size: Int
    /// The variance epsilon (`layer_norm_eps`).
    public let eps: Float

    /// Loads `weight` and `bias`, both `[size]`.
    public init(_ weights: WeightScope, size: Int, eps: Float) throws {
        self.size = size
        self.eps = eps
        weight = try weights.tensor("weight", shape: [size])
        bias = try weights.tensor("bias", shape: [size])
    }

    /// Normalises `rows` rows of `x` into `y` (which may alias `x`).
    public func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int) {
        withExtendedLifetime(self) {
            layerNorm(y, x, weight: weight.unsafeFloatPointer, bias: bias.unsafeFloatPointer,
                      rows: rows, cols: size, eps: eps)
        }
    }

    /// Normalises over the last dimension.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == size, "LayerNorm(\(size)) applied to \(x.shape)")
        let input = x.asF32()
        return Tensor(shape: x.shape) { y in
            withExtendedLifetime(input) { forward(y, input.unsafeFloatPointer, rows: x.count / size) }
        }
    }
}
