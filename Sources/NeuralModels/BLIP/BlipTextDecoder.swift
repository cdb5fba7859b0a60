// Port of transformers/models/blip/modeling_blip_text.py: BlipTextEmbeddings,
// BlipTextModel (decoder use, causal + cross-attention, EncoderDecoderCache),
// BlipTextPredictionHeadTransform, BlipTextLMPredictionHead, BlipTextLMHeadModel.
import NeuralCore

/// `text_decoder.bert.embeddings.*`: word + absolute position embeddings, then
/// LayerNorm (no token-type table). Positions start at the decoder's cache length.
public struct BlipTextEmbeddings: Sendable {
    /// `word_embeddings`, `[vocab, C]` (also the LM head's weight when tied).
    public let wordEmbeddings: Embedding
    /// `position_embeddings`, `[maxPositions, C]`.
    public let positionEmbeddings: Embedding
    /// `LayerNorm`.
    public let layerNorm: LayerNorm

    /// Loads the embeddings; table sizes come from the config.
    public init(_ weights: WeightScope, _ config: BlipTextConfig) throws {
        let width = config.bert.hiddenSize
        wordEmbeddings = try Embedding(weights.scoped("word_embeddings"), count: config.vocabSize, dimension: width)
        positionEmbeddings = try Embedding(weights.scoped("position_embeddings"), count: config.maxPositionEmbeddings, dimension: width)
        layerNorm = try LayerNorm(weights.scoped("LayerNorm"), size: width, eps: config.bert.layerNormEps)
    }

    /// Embeds equal-length sequences whose first token sits at absolute position
    /// `positionOffset`: `[R, T, C]`.
    /// - Throws: ``ModelInputError`` for unknown ids or positions past the table.
    public func callAsFunction(_ ids: [[Int]], positionOffset: Int) throws -> Tensor {
        let tokens = ids.first?.count ?? 0
        precondition(ids.allSatisfy { $0.count == tokens }, "BlipTextEmbeddings takes equal-length sequences")
        guard tokens > 0 else { throw ModelInputError.emptySequence }
        guard positionOffset + tokens <= positionEmbeddings.count else {
            throw ModelInputError.sequenceTooLong(length: positionOffset + tokens, maximum: positionEmbeddings.count)
        }
        let width = wordEmbeddings.dimension
        let summed = try Tensor(shape: [ids.count, tokens, width]) { out in
            for (r, sequence) in ids.enumerated() {
                let rows = out + r * tokens * width
                try wordEmbeddings.lookup(rows, sequence)
                addResidual(rows, positionEmbeddings.row(positionOffset), count: tokens * width)
            }
        }
        return layerNorm(summed)
    }
}

/// `text_decoder.cls.predictions.*`: `transform` (dense, activation, LayerNorm),
/// then the vocabulary projection `decoder` with its bias.
///
/// The projection weight is tied to the word embeddings (`tie_word_embeddings`,
/// the default): `decoder.weight` may be absent from the file, and when present it
/// is consumed but the embedding table is used, as transformers' tying does. The
/// bias is `predictions.bias` (`decoder.bias` is tied to it); a file with only
/// `decoder.bias` uses that.
public struct BlipTextLMPredictionHead: Sendable {
    /// `transform.dense`.
    public let transformDense: Linear
    /// `transform.transform_act_fn` (`hidden_act`).
    public let activation: Activation
    /// `transform.LayerNorm`.
    public let transformLayerNorm: LayerNorm
    /// The vocabulary projection `[vocab, C]`.
    public let decoderWeight: Tensor
    /// The output bias `[vocab]`.
    public let bias: Tensor

    /// Loads the head from its scope (`text_decoder.cls.predictions`);
    /// `wordEmbeddings` is the tied table.
    /// - Throws: `WeightError` (a missing bias names `predictions.bias`).
    public init(_ weights: WeightScope, _ config: BlipTextConfig, wordEmbeddings: Embedding) throws {
        let (width, vocab) = (config.bert.hiddenSize, config.vocabSize)
        transformDense = try Linear(weights.scoped("transform.dense"), inFeatures: width, outFeatures: width)
        activation = config.bert.hiddenAct
        transformLayerNorm = try LayerNorm(weights.scoped("transform.LayerNorm"), size: width, eps: config.bert.layerNormEps)
        if config.tieWordEmbeddings {
            // Shape-checked and consumed when present; the tied table is what runs.
            _ = try weights.tensorIfPresent("decoder.weight", shape: [vocab, width])
            decoderWeight = wordEmbeddings.weight
        } else {
            decoderWeight = try weights.tensor("decoder.weight", shape: [vocab, width])
        }
        let decoderBias = try weights.tensorIfPresent("decoder.bias", shape: [vocab])
        if let own = try weights.tensorIfPresent("bias", shape: [vocab]) {
            bias = own
        } else if let decoderBias {
            bias = decoderBias
        } else {
            throw WeightError.missing(key: weights.key("bias"), expectedShape: [vocab])
        }
    }

    /// The transformed states `LayerNorm(act(dense(h)))` of `rows` rows `[rows, C]`.
    public func transform(_ hidden: Tensor) -> Tensor {
        var h = transformDense(rowIndependent: hidden)
        h.withUnsafeMutableFloats { activate($0.baseAddress!, count: $0.count, activation) }
        return transformLayerNorm(h)
    }

    /// Vocabulary logits `[..., vocab]` of hidden states `[..., C]`.
    public func callAsFunction(_ hidden: Tensor) -> Tensor {
        Linear(weight: decoderWeight, bias: bias)(rowIndependent: transform(hidden))
    }
}

/// The per-image context the decoder cross-attends to: every layer's
/// cross-attention keys and values over the image embeddings, computed once per
/// image and shared by all of its sequences (beams) and all decoding steps.
public struct BlipImageContext: DecoderContext, Sendable {
    /// Per layer, `[N, S, C]` (N images, S image tokens).
    public let crossKeys: [Tensor]
    /// Per layer, `[N, S, C]`.
    public let crossValues: [Tensor]
    /// The number of images (N).
    public var inputCount: Int { crossKeys.first?.shape[0] ?? 0 }
}

/// Explicit decoder state for a set of sequences decoded in lockstep: each
/// layer's self-attention KV cache (whose length is the next position offset),
/// which image each sequence reads, and a count of the work done.
public struct BlipDecoderState: DecoderState, Sendable {
    /// The image context (cross-attention keys/values per image).
    public let context: BlipImageContext
    /// Per layer, the self-attention keys and values of every sequence.
    public private(set) var caches: [BertKVCache]
    /// `imageOfRow[r]`: the image sequence `r` is conditioned on.
    public private(set) var imageOfRow: [Int]
    /// Token positions run through the decoder layers since the state was made
    /// (the sum over calls of sequences × new tokens): a work counter.
    public internal(set) var processedPositions: Int = 0

    /// The number of sequences.
    public var rows: Int { imageOfRow.count }
    /// Tokens already decoded per sequence (the next token's position).
    public var length: Int { caches.first?.length ?? 0 }

    init(context: BlipImageContext, imageOfRow: [Int], layers: Int, width: Int, capacity: Int) {
        self.context = context
        self.imageOfRow = imageOfRow
        caches = (0..<layers).map { _ in BertKVCache(rows: imageOfRow.count, width: width, capacity: capacity) }
    }

    /// Keeps, in order, the sequences at `indices` (repeats allowed: beam
    /// reordering; omissions drop finished sequences).
    /// - Parameter indices: the rows to keep, each in `0..<rows`.
    public mutating func selectRows(_ indices: [Int]) {
        for i in caches.indices { caches[i].selectRows(indices) }
        imageOfRow = indices.map { imageOfRow[$0] }
    }

    mutating func withCache<R>(layer: Int, _ body: (inout BertKVCache) -> R) -> R {
        body(&caches[layer])
    }
}

/// BLIP's caption decoder (`text_decoder.*` of `BlipForConditionalGeneration`,
/// transformers' `BlipTextLMHeadModel`): embeddings, post-LN BERT layers with
/// causal self-attention and cross-attention to the image embeddings, LM head.
public struct BlipTextDecoder: Sendable {
    /// The decoder's config.
    public let config: BlipTextConfig
    /// `bert.embeddings`.
    public let embeddings: BlipTextEmbeddings
    /// `bert.encoder.layer.*` (each with `crossattention`).
    public let layers: [BertLayer]
    /// `cls.predictions`.
    public let head: BlipTextLMPredictionHead

    /// Loads the decoder from its scope (`text_decoder`).
    /// - Throws: `WeightError` naming the full key.
    public init(_ weights: WeightScope, _ config: BlipTextConfig) throws {
        self.config = config
        embeddings = try BlipTextEmbeddings(weights.scoped("bert.embeddings"), config)
        layers = try (0..<config.bert.numHiddenLayers).map { i -> BertLayer in
            let scope = weights.scoped("bert.encoder.layer.\(i)")
            // A BLIP decoder layer always has cross-attention: fail on its first key if absent.
            guard scope.contains("crossattention.self.query.weight") else {
                throw WeightError.missing(key: scope.key("crossattention.self.query.weight"),
                                          expectedShape: [config.bert.hiddenSize, config.bert.hiddenSize])
            }
            return try BertLayer(scope, config.bert)
        }
        head = try BlipTextLMPredictionHead(weights.scoped("cls.predictions"), config, wordEmbeddings: embeddings.wordEmbeddings)
    }

    /// Computes every layer's cross-attention keys and values over `imageEmbeds`
    /// `[N, S, E]` (the vision model's output), once.
    /// - Parameter imageEmbeds: `[N, S, E]`, E the decoder's `encoder_hidden_size`.
    /// - Returns: the context ``makeState(context:inputOfRow:capacity:)`` and
    ///   ``IncrementalDecoder/generate(context:plan:trace:)`` read.
    public func imageContext(_ imageEmbeds: Tensor) -> BlipImageContext {
        precondition(imageEmbeds.shape.count == 3 && imageEmbeds.shape[2] == (config.bert.encoderHiddenSize ?? config.bert.hiddenSize),
                     "image embeds \(imageEmbeds.shape) for a decoder reading width \(config.bert.encoderHiddenSize ?? 0)")
        let kv = layers.map { $0.crossAttention!.keysAndValues(imageEmbeds) }
        return BlipImageContext(crossKeys: kv.map(\.keys), crossValues: kv.map(\.values))
    }

    /// An empty decoder state for sequences reading images `inputOfRow` of
    /// `context`, with cache room for `capacity` tokens (it grows if needed).
    /// - Parameters:
    ///   - context: the images' cross-attention keys and values.
    ///   - inputOfRow: per sequence, the image it reads, in `0..<context.inputCount`.
    ///   - capacity: tokens per sequence to reserve cache room for.
    public func makeState(context: BlipImageContext, inputOfRow: [Int], capacity: Int) -> BlipDecoderState {
        precondition(inputOfRow.allSatisfy { $0 >= 0 && $0 < context.inputCount }, "inputOfRow outside the context's images")
        return BlipDecoderState(context: context, imageOfRow: inputOfRow, layers: layers.count,
                                width: config.bert.hiddenSize, capacity: capacity)
    }

    /// Feeds the next tokens `ids` (`[R][T]`, one equal-length list per sequence of
    /// `state`) through the decoder, appending to the KV caches. Only these `R·T`
    /// positions are computed; earlier ones come from the cache. Returns the last
    /// hidden state `[R, T, C]` and, with `allHiddenStates`, the embeddings and
    /// every layer's output.
    /// - Parameters:
    ///   - ids: `[R][T]` new tokens, R = `state.rows`.
    ///   - state: the sequences' caches, appended to.
    ///   - allHiddenStates: whether to return the embeddings and every layer's output.
    /// - Throws: ``ModelInputError`` for unknown ids or positions past the table.
    public func forward(_ ids: [[Int]], state: inout BlipDecoderState,
                        allHiddenStates: Bool = false) throws -> (last: Tensor, hiddenStates: [Tensor]) {
        precondition(ids.count == state.rows, "\(ids.count) sequences for a state of \(state.rows)")
        var hidden = try embeddings(ids, positionOffset: state.length)
        var all = allHiddenStates ? [hidden] : []
        let imageOfRow = state.imageOfRow
        for (i, layer) in layers.enumerated() {
            let context = state.context
            hidden = state.withCache(layer: i) { cache in
                layer(incremental: hidden, cache: &cache, crossKeys: context.crossKeys[i],
                      crossValues: context.crossValues[i], sourceOfRow: imageOfRow)
            }
            if allHiddenStates { all.append(hidden) }
        }
        state.processedPositions += hidden.shape[0] * hidden.shape[1]
        return (hidden, all)
    }

    /// Feeds the next tokens and returns the logits at each sequence's last new
    /// token, `[R, vocab]` (transformers' `logits[:, -1]`; the LM head runs on
    /// those rows only).
    /// - Parameters:
    ///   - ids: `[R][T]` new tokens, one equal-length list per sequence of `state`.
    ///   - state: the sequences' caches, appended to.
    /// - Returns: `[R, vocabSize]` logits.
    /// - Throws: ``ModelInputError``; ``NonFiniteOutputError`` when a logit is
    ///   not finite (a caption picked from them would be noise).
    public func nextTokenLogits(_ ids: [[Int]], state: inout BlipDecoderState) throws -> Tensor {
        let (last, _) = try forward(ids, state: &state)
        let (rows, tokens, width) = (last.shape[0], last.shape[1], last.shape[2])
        let lastRows = tokens == 1 ? last.reshaped([rows, width]) : Tensor(shape: [rows, width]) { out in
            withExtendedLifetime(last) {
                for r in 0..<rows {
                    (out + r * width).update(from: last.unsafeFloatPointer + (r * tokens + tokens - 1) * width, count: width)
                }
            }
        }
        let logits = head(lastRows)
        try NonFiniteOutputError.check(logits, "BLIP caption logits")
        return logits
    }

    /// Teacher-forced decoding of whole sequences `ids` (`[N][T]`, sequence `n`
    /// reading image `n` of `imageEmbeds` `[N, S, E]`), as
    /// `text_decoder(input_ids, encoder_hidden_states=image_embeds)` without a
    /// cache: returns the hidden states (embeddings, then each layer's output) and
    /// the logits `[N, T, vocab]`.
    /// - Throws: ``ModelInputError``.
    public func callAsFunction(_ ids: [[Int]], imageEmbeds: Tensor) throws -> (hiddenStates: [Tensor], logits: Tensor) {
        let context = imageContext(imageEmbeds)
        var state = makeState(context: context, inputOfRow: Array(0..<ids.count), capacity: ids.first?.count ?? 1)
        let (last, all) = try forward(ids, state: &state, allHiddenStates: true)
        return (all, head(last))
    }
}

/// BLIP's decoder under the generic searches, with the ids
/// `BlipForConditionalGeneration.generate` passes: `eos_token_id = sep_token_id`,
/// `pad_token_id = pad_token_id`.
extension BlipTextDecoder: IncrementalDecoder {
    /// `vocab_size`.
    public var vocabSize: Int { config.vocabSize }
    /// `sep_token_id`: BLIP's captions end at [SEP], not at `eos_token_id`.
    public var endTokenId: Int? { config.sepTokenId }
    /// `pad_token_id`.
    public var padTokenId: Int? { config.padTokenId }
    /// `max_position_embeddings`.
    public var maxPositionEmbeddings: Int { config.maxPositionEmbeddings }
}
