import NeuralCore

/// `nn.Linear`: `y = x·Wᵀ + b`, with `weight` `[out, in]` as PyTorch stores it.
/// Loads `weight` and (optionally) `bias` from its scope.
public struct Linear: Sendable {
    /// `[outFeatures, inFeatures]`, F32.
    public let weight: Tensor
    /// `[outFeatures]`, F32, or nil.
    public let bias: Tensor?
    /// Input width.
    public let inFeatures: Int
    /// Output width.
    public let outFeatures: Int

    /// Loads `weight` `[outFeatures, inFeatures]` and, when `bias` is true, `bias` `[outFeatures]`.
    public init(_ weights: WeightScope, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = try weights.tensor("weight", shape: [outFeatures, inFeatures])
        self.bias = bias ? try weights.tensor("bias", shape: [outFeatures]) : nil
    }

    /// A layer over tensors already loaded: `weight` `[out, in]` and `bias` `[out]` or nil.
    init(weight: Tensor, bias: Tensor?) {
        precondition(weight.shape.count == 2 && bias.map { $0.shape == [weight.shape[0]] } ?? true,
                     "Linear weight \(weight.shape), bias \(bias?.shape ?? [])")
        self.weight = weight
        self.bias = bias
        outFeatures = weight.shape[0]
        inFeatures = weight.shape[1]
    }

    /// Applies the layer to `rows` input rows (`[rows, in]` → `[rows, out]`), with
    /// row strides `ldx` and `ldy` (default: contiguous).
    public func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rows: Int,
                        ldx: Int? = nil, ldy: Int? = nil) {
        withExtendedLifetime(self) {
            linearForward(y, x, weight: weight.unsafeFloatPointer, bias: bias?.unsafeFloatPointer,
                          rows: rows, inFeatures: inFeatures, outFeatures: outFeatures, ldx: ldx, ldy: ldy)
        }
    }

    /// Applies the layer over the last dimension: `[..., in]` → `[..., out]`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == inFeatures, "Linear(\(inFeatures)→\(outFeatures)) applied to \(x.shape)")
        let rows = x.count / inFeatures
        let input = x.asF32()
        return Tensor(shape: Array(x.shape.dropLast()) + [outFeatures]) { y in
            withExtendedLifetime(input) { forward(y, input.unsafeFloatPointer, rows: rows) }
        }
    }

    /// Applies the layer to `[N, S, in]` sequences (→ `[N, S, out]`) so that each
    /// sequence's result equals the sequence's alone, bit for bit: as one product,
    /// or as N products of S rows where the BLAS kernel sums a row differently at
    /// other places in a product (`BLAS.rowAlignment` above 1).
    public func callAsFunction(sequences x: Tensor) -> Tensor {
        precondition(x.shape.count == 3 && x.shape[2] == inFeatures, "Linear(\(inFeatures)→\(outFeatures)) applied to \(x.shape)")
        guard BLAS.rowAlignment > 1, x.shape[0] > 1 else { return self(x) }
        let (count, length) = (x.shape[0], x.shape[1])
        let input = x.asF32()
        return Tensor(shape: [count, length, outFeatures]) { y in
            withExtendedLifetime(input) {
                for n in 0..<count {
                    forward(y + n * length * outFeatures, input.unsafeFloatPointer + n * length * inFeatures, rows: length)
                }
            }
        }
    }

    /// Applies the layer over the last dimension in groups of at most
    /// `skinnyMaxRows` rows, so that each row's result is the same whatever the
    /// number of rows (products that small run in the skinny kernel, whose sums
    /// for a row do not depend on the others): for pooled outputs such as CLIP's
    /// projections and every product of a decoding step, where a batch must equal
    /// its items one at a time, bit for bit, and the weights' extra passes cost
    /// little.
    public func callAsFunction(rowIndependent x: Tensor) -> Tensor {
        precondition(x.shape.last == inFeatures, "Linear(\(inFeatures)→\(outFeatures)) applied to \(x.shape)")
        let rows = x.count / inFeatures
        let input = x.asF32()
        return Tensor(shape: Array(x.shape.dropLast()) + [outFeatures]) { y in
            withExtendedLifetime(input) {
                for first in stride(from: 0, to: rows, by: skinnyMaxRows) {
                    forward(y + first * outFeatures, input.unsafeFloatPointer + first * inFeatures,
                            rows: min(skinnyMaxRows, rows - first))
                }
            }
        }
    }
}
