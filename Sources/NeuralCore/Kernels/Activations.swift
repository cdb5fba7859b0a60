import Foundation

/// The element-wise activations of the supported checkpoints, named as in
/// Hugging Face configs (`hidden_act`).
public enum Activation: String, Sendable, Codable {
    /// Exact GELU, `x·Φ(x)` with the error function (PyTorch's default).
    case gelu
    /// GELU with the tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    case geluTanh = "gelu_pytorch_tanh"
    /// OpenAI CLIP's `x·σ(1.702x)`.
    case quickGELU = "quick_gelu"

    /// Parses a Hugging Face `hidden_act` string, accepting its aliases.
    public init?(huggingFaceName name: String) {
        switch name {
        case "gelu", "gelu_python": self = .gelu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": self = .geluTanh
        case "quick_gelu": self = .quickGELU
        default: return nil
        }
    }
}

/// Applies `activation` in place to `count` values (multi-threaded for large inputs).
public func activate(_ x: UnsafeMutablePointer<Float>, count: Int, _ activation: Activation) {
    forEachBlock(count) { start, end in activateRange(x + start, count: end - start, bias: nil, activation) }
}

/// `x[r, c] = activation(x[r, c] + bias[c])` in one pass: a product's bias and
/// its activation together (`fc1`/`intermediate.dense` computed with `beta = 0`).
/// Rows run in parallel.
/// - Parameters:
///   - x: `[rows, cols]`.
///   - bias: `[cols]`, or nil.
///   - rows: the rows of `x`.
///   - cols: the width of each row.
///   - activation: the activation applied after the bias.
public func addBiasAndActivate(_ x: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, rows: Int, cols: Int,
                               _ activation: Activation) {
    forEachRowBlock(rows: rows, cols: cols) { r in activateRange(x + r * cols, count: cols, bias: bias, activation) }
}

/// Naive twin of ``addBiasAndActivate(_:bias:rows:cols:_:)``.
public func addBiasAndActivateNaive(_ x: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, rows: Int, cols: Int,
                                    _ activation: Activation) {
    if let bias { addBiasNaive(x, bias, rows: rows, cols: cols) }
    activateNaive(x, count: rows * cols, activation)
}

/// `x[i] = activation(x[i] + bias[i])` for `count` values, eight lanes at a time.
@inline(__always)
func activateRange(_ x: UnsafeMutablePointer<Float>, count: Int, bias: UnsafePointer<Float>?, _ activation: Activation) {
    switch activation {
    case .gelu:
        mapRange(x, count: count, bias: bias, { v in 0.5 * v * (1 + fastErf(v * 0.707_106_77)) },
                 { v in 0.5 * v * (1 + fastErf(v * 0.707_106_77)) })
    case .geluTanh:
        mapRange(x, count: count, bias: bias, { v in 0.5 * v * (1 + fastTanh(0.797_884_56 * (v + 0.044_715 * v * v * v))) },
                 { v in 0.5 * v * (1 + fastTanh(0.797_884_56 * (v + 0.044_715 * v * v * v))) })
    case .quickGELU:
        mapRange(x, count: count, bias: bias, { v in v / (1 + fastExp(-1.702 * v)) }, { v in v / (1 + fastExp(-1.702 * v)) })
    }
}

/// `x[i] = f(x[i] + bias[i])`, with `vector` on eight lanes and `scalar` for the tail.
@inline(__always)
func mapRange(_ x: UnsafeMutablePointer<Float>, count: Int, bias: UnsafePointer<Float>?,
              _ vector: (SIMD8<Float>) -> SIMD8<Float>, _ scalar: (Float) -> Float) {
    var i = 0
    if let bias {
        while i &+ 8 <= count {
            storeVector(vector(loadVector(x + i) + loadVector(bias + i)), x + i)
            i &+= 8
        }
        while i < count {
            x[i] = scalar(x[i] + bias[i])
            i &+= 1
        }
    } else {
        while i &+ 8 <= count {
            storeVector(vector(loadVector(x + i)), x + i)
            i &+= 8
        }
        while i < count {
            x[i] = scalar(x[i])
            i &+= 1
        }
    }
}

/// Naive twin of ``activate(_:count:_:)``, in `Double` with libm's `erf`/`tanh`/`exp`.
public func activateNaive(_ x: UnsafeMutablePointer<Float>, count: Int, _ activation: Activation) {
    for i in 0..<count {
        let v = Double(x[i])
        let y: Double = switch activation {
        case .gelu: 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
        case .geluTanh: 0.5 * v * (1 + tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))
        case .quickGELU: v / (1 + exp(-1.702 * v))
        }
        x[i] = Float(y)
    }
}

/// Splits `0..<count` into blocks of at least 16K elements run in parallel.
@inline(__always)
func forEachBlock(_ count: Int, minimumBlock: Int = 16_384, _ body: (Int, Int) -> Void) {
    let blocks = max(1, min(Threading.threadCount, count / minimumBlock))
    if blocks == 1 {
        body(0, count)
        return
    }
    Threading.parallelFor(blocks) { b in body(count * b / blocks, count * (b + 1) / blocks) }
}
