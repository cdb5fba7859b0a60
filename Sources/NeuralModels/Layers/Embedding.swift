import Foundation
import NeuralCore

/// Errors raised by model forward passes on invalid inputs.
public enum ModelInputError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A token id outside the embedding table.
    case tokenOutOfRange(id: Int, vocabularySize: Int)
    /// A sequence longer than the model's position table.
    case sequenceTooLong(length: Int, maximum: Int)
    /// An image tensor whose shape the model cannot take.
    case imageShape(found: [Int], expected: [Int])
    /// A token sequence with no tokens.
    case emptySequence

    /// A readable explanation.
    public var description: String {
        switch self {
        case let .tokenOutOfRange(id, size): "token id \(id) outside the vocabulary of \(size)"
        case let .sequenceTooLong(length, maximum): "sequence of \(length) tokens exceeds the model's \(maximum) positions"
        case let .imageShape(found, expected): "image tensor of shape \(found), expected \(expected)"
        case .emptySequence: "empty token sequence"
        }
    }
}

/// `nn.Embedding`: a `[count, dimension]` table looked up by index.
public struct Embedding: Sendable {
    /// `[count, dimension]`, F32.
    public let weight: Tensor
    /// The number of rows.
    public let count: Int
    /// The row width.
    public let dimension: Int

    /// Loads `weight` `[count, dimension]`.
    public init(_ weights: WeightScope, count: Int, dimension: Int) throws {
        self.count = count
        self.dimension = dimension
        weight = try weights.tensor("weight", shape: [count, dimension])
    }

    /// The row for `index`, as a pointer into the table (valid while `self` lives).
    public func row(_ index: Int) -> UnsafePointer<Float> {
        precondition(index >= 0 && index < count, "embedding index \(index) outside 0..<\(count)")
        return weight.unsafeFloatPointer + index * dimension
    }

    /// Writes the rows for `indices` to `y` (`[indices.count, dimension]`).
    /// - Throws: ``ModelInputError/tokenOutOfRange(id:vocabularySize:)``.
    public func lookup(_ y: UnsafeMutablePointer<Float>, _ indices: [Int]) throws {
        for (i, index) in indices.enumerated() {
            guard index >= 0 && index < count else { throw ModelInputError.tokenOutOfRange(id: index, vocabularySize: count) }
            (y + i * dimension).update(from: row(index), count: dimension)
        }
    }
}

extension ModelInputError: LocalizedError {
    /// The same text as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}
