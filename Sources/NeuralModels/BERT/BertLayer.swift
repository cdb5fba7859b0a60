// Port of transformers/models/bert/modeling_bert.py (BertLayer and its parts) and
// transformers/models/blip/modeling_blip_text.py (BlipTextLayer, the same module
// tree plus cross-attention): post-LayerNorm transformer blocks.
import NeuralCore

/// The hyper-parameters of a BERT-style encoder or decoder, decoded from a Hugging
/// Face `BertConfig` or BLIP `text_config`, with BERT-base defaults.
public struct BertConfig: Codable, Sendable, Equatable {
    /// Residual stream width (`hidden_size`).
    public var hiddenSize: Int
    /// Attention heads (`num_attention_heads`).
    public var numAttentionHeads: Int
    /// Feed-forward width (`intermediate_size`).
    public var intermediateSize: Int
    /// Number of layers (`num_hidden_layers`).
    public var numHiddenLayers: Int
    /// Feed-forward activation (`hidden_act`).
    public var hiddenAct: Activation
    /// LayerNorm epsilon (`layer_norm_eps`).
    public var layerNormEps: Float
    /// Width of the states cross-attention reads (`encoder_hidden_size`, BLIP's
    /// vision width); nil when absent.
    public var encoderHiddenSize: Int?

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
        case encoderHiddenSize = "encoder_hidden_size"
    }

    /// Creates a config from explicit values.
    public init(hiddenSize: Int = 768, numAttentionHeads: Int = 12, intermediateSize: Int = 3072,
                numHiddenLayers: Int = 12, hiddenAct: Activation = .gelu, layerNormEps: Float = 1e-12,
                encoderHiddenSize: Int? = nil) {
        self.hiddenSize = hiddenSize
        self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.hiddenAct = hiddenAct
        self.layerNormEps = layerNormEps
        self.encoderHiddenSize = encoderHiddenSize
    }

    /// Decodes from a Hugging Face config object; absent keys take BERT-base values.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let act = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "gelu"
        guard let activation = Activation(huggingFaceName: act) else {
            throw DecodingError.dataCorruptedError(forKey: .hiddenAct, in: c, debugDescription: "unsupported hidden_act '\(act)'")
        }
        self.init(
            hiddenSize: try c.size(.hiddenSize, default: 768, in: ConfigLimits.width),
            numAttentionHeads: try c.size(.numAttentionHeads, default: 12, in: ConfigLimits.heads),
            intermediateSize: try c.size(.intermediateSize, default: 3072, in: ConfigLimits.width),
            numHiddenLayers: try c.size(.numHiddenLayers, default: 12, in: ConfigLimits.layers),
            hiddenAct: activation,
            layerNormEps: try c.epsilon(.layerNormEps, default: 1e-12),
            encoderHiddenSize: try c.decodeIfPresent(Int.self, forKey: .encoderHiddenSize) == nil
                ? nil : try c.size(.encoderHiddenSize, default: 0, in: ConfigLimits.width))
        try c.require(hiddenSize % numAttentionHeads == 0, .numAttentionHeads,
                      "hidden_size \(hiddenSize) is not divisible by num_attention_heads \(numAttentionHeads)")
    }

    /// The width of one attention head.
    public var headDim: Int { hiddenSize / numAttentionHeads }
}

/// Which keys each query of a self-attention may see.
public enum AttentionMasking: Sendable, Equatable {
    /// Every query sees every key (an encoder without padding).
    case none
    /// Query `i` sees keys `0...i` (a decoder).
    case causal
    /// Sequence `b` of the batch has `lengths[b]` real tokens, the rest padding
    /// (an encoder over a padded batch).
    case padding(lengths: [Int])

    func mask(forSequence b: Int) -> SoftmaxMask {
        switch self {
        case .none: .none
        case .causal: SoftmaxMask(causalOffset: 0)
        case let .padding(lengths): SoftmaxMask(validColumns: lengths[b])
        }
    }
}

/// Attention followed by `dense` + residual + `LayerNorm` (BERT's `BertAttention`
/// = `self` + `output`). Used for self-attention (`attention`) and, with keys and
/// values read from another sequence, for cross-attention (`crossattention`).
public struct BertAttention: Sendable {
    /// `self.query`.
    public let query: Linear
    /// `self.key` (input width: hidden, or the encoder's for cross-attention).
    public let key: Linear
    /// `self.value` (same input width as `key`).
    public let value: Linear
    /// `output.dense`.
    public let outputDense: Linear
    /// `output.LayerNorm`.
    public let outputLayerNorm: LayerNorm
    /// The head count.
    public let heads: Int

    /// Loads the block; `keyValueWidth` is the width of the states keys and values
    /// are computed from (the hidden size for self-attention).
    public init(_ weights: WeightScope, _ config: BertConfig, keyValueWidth: Int) throws {
        let c = config.hiddenSize
        query = try Linear(weights.scoped("self.query"), inFeatures: c, outFeatures: c)
        key = try Linear(weights.scoped("self.key"), inFeatures: keyValueWidth, outFeatures: c)
        value = try Linear(weights.scoped("self.value"), inFeatures: keyValueWidth, outFeatures: c)
        outputDense = try Linear(weights.scoped("output.dense"), inFeatures: c, outFeatures: c)
        outputLayerNorm = try LayerNorm(weights.scoped("output.LayerNorm"), size: c, eps: config.layerNormEps)
        heads = config.numAttentionHeads
    }

    /// `LayerNorm(x + dense(attention(x → keysFrom)))` for `x` `[B, T, C]` and
    /// `keysFrom` `[B, S, E]` (`x` itself for self-attention).
    public func callAsFunction(_ x: Tensor, keysFrom source: Tensor, masking: AttentionMasking) -> Tensor {
        let (batch, tokens, width) = (x.shape[0], x.shape[1], x.shape[2])
        let context = batchedAttention(
            q: AttentionOperand(tensor: query(x)), k: AttentionOperand(tensor: key(source)),
            v: AttentionOperand(tensor: value(source)),
            batch: batch, queryTokens: tokens, keyTokens: source.shape[1], heads: heads, width: width,
            mask: masking.mask(forSequence:))
        var projected = outputDense(context)
        projected.add(x)
        return outputLayerNorm(projected)
    }
}

/// One post-LayerNorm BERT block: self-attention, optional cross-attention to
/// encoder states (BLIP's text decoder), and the feed-forward
/// `LayerNorm(h + output.dense(act(intermediate.dense(h))))`.
public struct BertLayer: Sendable {
    /// `attention`.
    public let attention: BertAttention
    /// `crossattention`, present when the checkpoint has it.
    public let crossAttention: BertAttention?
    /// `intermediate.dense`.
    public let intermediateDense: Linear
    /// `output.dense`.
    public let outputDense: Linear
    /// `output.LayerNorm`.
    public let outputLayerNorm: LayerNorm
    /// The feed-forward activation.
    public let activation: Activation

    /// Loads the block; cross-attention is loaded when the scope has
    /// `crossattention.*` weights (its key/value input width is
    /// `config.encoderHiddenSize`).
    public init(_ weights: WeightScope, _ config: BertConfig) throws {
        let c = config.hiddenSize
        attention = try BertAttention(weights.scoped("attention"), config, keyValueWidth: c)
        if weights.contains("crossattention.self.query.weight") {
            crossAttention = try BertAttention(weights.scoped("crossattention"), config,
                                               keyValueWidth: config.encoderHiddenSize ?? c)
        } else {
            crossAttention = nil
        }
        intermediateDense = try Linear(weights.scoped("intermediate.dense"), inFeatures: c, outFeatures: config.intermediateSize)
        outputDense = try Linear(weights.scoped("output.dense"), inFeatures: config.intermediateSize, outFeatures: c)
        outputLayerNorm = try LayerNorm(weights.scoped("output.LayerNorm"), size: c, eps: config.layerNormEps)
        activation = config.hiddenAct
    }

    /// Applies the block to `x` `[B, T, C]`; `encoderStates` `[B, S, E]` feed the
    /// cross-attention when the layer has one.
    public func callAsFunction(_ x: Tensor, masking: AttentionMasking, encoderStates: Tensor? = nil) -> Tensor {
        var hidden = attention(x, keysFrom: x, masking: masking)
        if let crossAttention, let encoderStates {
            hidden = crossAttention(hidden, keysFrom: encoderStates, masking: .none)
        }
        var intermediate = intermediateDense(hidden)
        intermediate.withUnsafeMutableFloats { activate($0.baseAddress!, count: $0.count, activation) }
        var output = outputDense(intermediate)
        output.add(hidden)
        return outputLayerNorm(output)
    }
}

// MARK: - Incremental decoding (KV cache)
//
// Port of the cache paths of transformers/models/blip/modeling_blip_text.py
// (BlipTextSelfAttention with an EncoderDecoderCache): self-attention keys and
// values are appended per step, cross-attention keys and values over the encoder
// states are computed once and reused. Every product of these paths runs in groups
// of at most `skinnyMaxRows` rows (`Linear(rowIndependent:)`), so a sequence's
// states and logits are the same bits whatever is decoded beside it: any batch
// size and beam count, on every BLAS kernel.

/// The self-attention keys and values one decoder layer has seen, for `rows`
/// sequences decoded in lockstep (all of the same ``length``).
///
/// A value type: copying a cache and appending to the copy leaves the original as
/// it was. Storage is `[rows, capacity, width]` per tensor, so one row's keys are
/// contiguous `[length, width]` rows that attention reads in place.
public struct BertKVCache: Sendable {
    /// The number of sequences.
    public private(set) var rows: Int
    /// Tokens cached per sequence (the next token's position offset).
    public private(set) var length: Int
    /// Tokens per sequence the storage holds before it grows.
    public private(set) var capacity: Int
    /// The key/value width (heads · head size).
    public let width: Int
    /// `[rows, capacity, width]`; rows `0..<length` of each sequence are valid.
    public private(set) var keys: Tensor
    /// `[rows, capacity, width]`; rows `0..<length` of each sequence are valid.
    public private(set) var values: Tensor

    /// An empty cache for `rows` sequences of `width`-wide keys, with room for
    /// `capacity` tokens each (it grows when needed).
    public init(rows: Int, width: Int, capacity: Int) {
        self.rows = rows
        self.width = width
        self.capacity = max(capacity, 1)
        self.length = 0
        keys = Tensor(zeros: [rows, self.capacity, width])
        values = Tensor(zeros: [rows, self.capacity, width])
    }

    /// Appends `tokens` new keys and values per sequence, from `newKeys` and
    /// `newValues` laid out `[rows, tokens, width]`.
    public mutating func append(keys newKeys: UnsafePointer<Float>, values newValues: UnsafePointer<Float>, tokens: Int) {
        if length + tokens > capacity { grow(to: max(2 * capacity, length + tokens)) }
        let (rows, capacity, width, length) = (rows, capacity, width, length)
        func copy(_ source: UnsafePointer<Float>, into buffer: UnsafeMutableBufferPointer<Float>) {
            for r in 0..<rows {
                (buffer.baseAddress! + (r * capacity + length) * width).update(from: source + r * tokens * width, count: tokens * width)
            }
        }
        keys.withUnsafeMutableFloats { copy(newKeys, into: $0) }
        values.withUnsafeMutableFloats { copy(newValues, into: $0) }
        self.length += tokens
    }

    /// Keeps, in order, the sequences at `indices` (a row may appear several times,
    /// as when beams are reordered; rows not listed are dropped).
    public mutating func selectRows(_ indices: [Int]) {
        precondition(indices.allSatisfy { $0 >= 0 && $0 < rows }, "selectRows: index outside 0..<\(rows)")
        if indices == Array(0..<rows) { return }
        keys = gather(keys, indices)
        values = gather(values, indices)
        rows = indices.count
    }

    private func gather(_ source: Tensor, _ indices: [Int]) -> Tensor {
        let (capacity, width, length) = (capacity, width, length)
        return Tensor(shape: [indices.count, capacity, width]) { out in
            withExtendedLifetime(source) {
                let base = source.unsafeFloatPointer
                for (i, r) in indices.enumerated() {
                    (out + i * capacity * width).update(from: base + r * capacity * width, count: length * width)
                }
            }
        }
    }

    private mutating func grow(to newCapacity: Int) {
        let (rows, capacity, width, length) = (rows, capacity, width, length)
        func widen(_ source: Tensor) -> Tensor {
            var result = Tensor(zeros: [rows, newCapacity, width])
            result.withUnsafeMutableFloats { out in
                withExtendedLifetime(source) {
                    for r in 0..<rows {
                        (out.baseAddress! + r * newCapacity * width).update(from: source.unsafeFloatPointer + r * capacity * width,
                                                                           count: length * width)
                    }
                }
            }
            return result
        }
        keys = widen(keys)
        values = widen(values)
        self.capacity = newCapacity
    }
}

extension BertAttention {
    /// The keys and values of `source` `[N, S, E]` (`[N, S, C]` each): for
    /// cross-attention they are computed once per encoder output and reused by
    /// every decoding step; each of the N equals its encoder output's alone.
    public func keysAndValues(_ source: Tensor) -> (keys: Tensor, values: Tensor) {
        (key(sequences: source), value(sequences: source))
    }

    /// Causal self-attention of `x` `[R, T, C]`, the next `T` tokens of each of the
    /// cache's `R` sequences: their keys and values are appended to `cache`, and
    /// token `i` attends to the `cache.length` earlier tokens and to new tokens
    /// `0...i`. Returns `LayerNorm(x + dense(attention))`.
    public func callAsFunction(incremental x: Tensor, cache: inout BertKVCache) -> Tensor {
        let (rows, tokens, width) = (x.shape[0], x.shape[1], x.shape[2])
        precondition(rows == cache.rows && width == cache.width, "incremental attention: \(x.shape) vs cache of \(cache.rows)×\(cache.width)")
        let q = query(rowIndependent: x), k = key(rowIndependent: x), v = value(rowIndependent: x)
        let past = cache.length
        withExtendedLifetime((k, v)) { cache.append(keys: k.unsafeFloatPointer, values: v.unsafeFloatPointer, tokens: tokens) }
        let total = cache.length, capacity = cache.capacity
        let cachedKeys = cache.keys, cachedValues = cache.values
        let headDim = width / heads
        let context = Tensor(shape: x.shape) { out in
            withExtendedLifetime((q, cachedKeys, cachedValues)) {
                Workspace.withScratch(tokens * total) { scratch in
                    let keys = cachedKeys.unsafeFloatPointer, values = cachedValues.unsafeFloatPointer
                    for r in 0..<rows {
                        multiHeadAttention(
                            out + r * tokens * width, ldo: width,
                            q: q.unsafeFloatPointer + r * tokens * width, ldq: width,
                            k: keys + r * capacity * width, ldk: width,
                            v: values + r * capacity * width, ldv: width,
                            queryCount: tokens, keyCount: total, heads: heads, headDim: headDim,
                            scale: 1 / Float(headDim).squareRoot(), mask: SoftmaxMask(causalOffset: past), scratch: scratch)
                    }
                }
            }
        }
        var projected = outputDense(rowIndependent: context)
        projected.add(x)
        return outputLayerNorm(projected)
    }

    /// Cross-attention of `x` `[R, T, C]` to precomputed `keys`/`values`
    /// `[N, S, C]` (from ``keysAndValues(_:)``): row `r` reads source
    /// `sourceOfRow[r]`. Consecutive rows of the same source (beams of one image)
    /// share one GEMM per head. Returns `LayerNorm(x + dense(attention))`.
    public func callAsFunction(_ x: Tensor, keys: Tensor, values: Tensor, sourceOfRow: [Int]) -> Tensor {
        let (rows, tokens, width) = (x.shape[0], x.shape[1], x.shape[2])
        let sourceTokens = keys.shape[1]
        precondition(sourceOfRow.count == rows && keys.shape == values.shape && keys.shape[2] == width,
                     "cross-attention: \(x.shape) rows vs keys \(keys.shape), \(sourceOfRow.count) sources")
        let q = query(rowIndependent: x)
        let headDim = width / heads
        let context = Tensor(shape: x.shape) { out in
            withExtendedLifetime((q, keys, values)) {
                // Scratch for the largest group of rows reading one source.
                var largest = 0, run = 0
                for r in 0..<rows {
                    run = r > 0 && sourceOfRow[r] == sourceOfRow[r - 1] ? run + 1 : 1
                    largest = max(largest, run)
                }
                Workspace.withScratch(largest * tokens * sourceTokens) { scratch in
                    var first = 0
                    while first < rows {
                        var end = first + 1
                        while end < rows && sourceOfRow[end] == sourceOfRow[first] { end += 1 }
                        let queries = (end - first) * tokens
                        let s = sourceOfRow[first]
                        multiHeadAttention(
                            out + first * tokens * width, ldo: width,
                            q: q.unsafeFloatPointer + first * tokens * width, ldq: width,
                            k: keys.unsafeFloatPointer + s * sourceTokens * width, ldk: width,
                            v: values.unsafeFloatPointer + s * sourceTokens * width, ldv: width,
                            queryCount: queries, keyCount: sourceTokens, heads: heads, headDim: headDim,
                            scale: 1 / Float(headDim).squareRoot(), mask: .none, scratch: scratch)
                        first = end
                    }
                }
            }
        }
        var projected = outputDense(rowIndependent: context)
        projected.add(x)
        return outputLayerNorm(projected)
    }
}

extension BertLayer {
    /// The feed-forward part: `LayerNorm(h + output.dense(act(intermediate.dense(h))))`,
    /// each row's result independent of the others (as every product of a
    /// decoding step).
    public func feedForward(_ hidden: Tensor) -> Tensor {
        var intermediate = intermediateDense(rowIndependent: hidden)
        intermediate.withUnsafeMutableFloats { activate($0.baseAddress!, count: $0.count, activation) }
        var output = outputDense(rowIndependent: intermediate)
        output.add(hidden)
        return outputLayerNorm(output)
    }

    /// Applies the causal block to the next tokens `x` `[R, T, C]` of the cache's
    /// sequences (appending their self-attention keys and values to `cache`), with
    /// cross-attention to precomputed encoder `crossKeys`/`crossValues` `[N, S, C]`
    /// (row `r` reads source `sourceOfRow[r]`) when the layer has cross-attention.
    public func callAsFunction(incremental x: Tensor, cache: inout BertKVCache,
                               crossKeys: Tensor?, crossValues: Tensor?, sourceOfRow: [Int]) -> Tensor {
        var hidden = attention(incremental: x, cache: &cache)
        if let crossAttention, let crossKeys, let crossValues {
            hidden = crossAttention(hidden, keys: crossKeys, values: crossValues, sourceOfRow: sourceOfRow)
        }
        return feedForward(hidden)
    }
}
