// Port of transformers/models/bert/modeling_bert.py: BertEmbeddings, BertEncoder,
// BertPooler, BertModel (encoder use, as sentence-transformers runs it).
import Foundation
import NeuralCore

/// `embeddings.*`: word + absolute position (+ token type 0, when the checkpoint
/// has the table) embeddings, then LayerNorm.
public struct BertEmbeddings: Sendable {
    /// `word_embeddings`.
    public let wordEmbeddings: Embedding
    /// `position_embeddings`.
    public let positionEmbeddings: Embedding
    /// `token_type_embeddings` (absent in BLIP's text decoder).
    public let tokenTypeEmbeddings: Embedding?
    /// `LayerNorm`.
    public let layerNorm: LayerNorm

    /// Loads the embeddings; `vocabularySize` and `maxPositions` come from the config.
    public init(_ weights: WeightScope, _ config: BertConfig, vocabularySize: Int, maxPositions: Int, typeVocabularySize: Int) throws {
        let width = config.hiddenSize
        wordEmbeddings = try Embedding(weights.scoped("word_embeddings"), count: vocabularySize, dimension: width)
        positionEmbeddings = try Embedding(weights.scoped("position_embeddings"), count: maxPositions, dimension: width)
        tokenTypeEmbeddings = weights.contains("token_type_embeddings.weight")
            ? try Embedding(weights.scoped("token_type_embeddings"), count: typeVocabularySize, dimension: width) : nil
        layerNorm = try LayerNorm(weights.scoped("LayerNorm"), size: width, eps: config.layerNormEps)
    }

    /// Embeds equal-length (padded) sequences whose first token sits at absolute
    /// position `positionOffset`: `[B, T, C]`.
    /// - Throws: ``ModelInputError`` for unknown ids or positions past the table.
    public func callAsFunction(_ ids: [[Int]], positionOffset: Int = 0) throws -> Tensor {
        let tokens = ids.first?.count ?? 0
        precondition(ids.allSatisfy { $0.count == tokens }, "BertEmbeddings takes equal-length sequences")
        guard positionOffset + tokens <= positionEmbeddings.count else {
            throw ModelInputError.sequenceTooLong(length: positionOffset + tokens, maximum: positionEmbeddings.count)
        }
        let width = wordEmbeddings.dimension
        let summed = try Tensor(shape: [ids.count, tokens, width]) { out in
            for (b, sequence) in ids.enumerated() {
                let rows = out + b * tokens * width
                try wordEmbeddings.lookup(rows, sequence)
                for t in 0..<tokens {
                    addResidual(rows + t * width, positionEmbeddings.row(positionOffset + t), count: width)
                    if let tokenTypeEmbeddings { addResidual(rows + t * width, tokenTypeEmbeddings.row(0), count: width) }
                }
            }
        }
        return layerNorm(summed)
    }
}

/// A BERT encoder (`BertModel`): embeddings, `encoder.layer.*`, and the optional
/// `pooler`. Proven on the real all-MiniLM-L6-v2 weights.
public struct BertModel: Sendable {
    /// The config.
    public let config: BertConfig
    /// `embeddings`.
    public let embeddings: BertEmbeddings
    /// `encoder.layer.*`.
    public let layers: [BertLayer]
    /// `pooler.dense` (tanh of the first token's projection), when present.
    public let pooler: Linear?

    /// The fields of `config.json` beyond ``BertConfig`` that size the tables.
    struct Tables: Decodable {
        var vocab_size: Int?
        var max_position_embeddings: Int?
        var type_vocab_size: Int?
    }

    /// Loads `BertModel` weights from `scope` (the root for a plain BERT checkpoint).
    public init(_ weights: WeightScope, config: BertConfig, vocabularySize: Int = 30522, maxPositions: Int = 512,
                typeVocabularySize: Int = 2) throws {
        self.config = config
        embeddings = try BertEmbeddings(weights.scoped("embeddings"), config, vocabularySize: vocabularySize,
                                        maxPositions: maxPositions, typeVocabularySize: typeVocabularySize)
        layers = try (0..<config.numHiddenLayers).map { try BertLayer(weights.scoped("encoder.layer.\($0)"), config) }
        pooler = weights.contains("pooler.dense.weight")
            ? try Linear(weights.scoped("pooler.dense"), inFeatures: config.hiddenSize, outFeatures: config.hiddenSize) : nil
    }

    /// Loads a Hugging Face BERT checkpoint directory, strictly (only
    /// `position_ids` buffers may go unused).
    public init(directory: URL) throws {
        let checkpoint = try Checkpoint(directory: directory)
        let tables = try checkpoint.json(Tables.self)
        try self.init(WeightScope(checkpoint.weights), config: checkpoint.json(BertConfig.self),
                      vocabularySize: tables.vocab_size ?? 30522, maxPositions: tables.max_position_embeddings ?? 512,
                      typeVocabularySize: tables.type_vocab_size ?? 2)
        checkpoint.weights.markConsumed { $0.hasSuffix("position_ids") }
        try checkpoint.weights.verifyAllConsumed()
    }

    /// Encodes a batch of token-id sequences of any lengths, padding them to the
    /// longest and masking the padding. Returns the last hidden state `[B, T, C]`
    /// and, with `allHiddenStates`, the embeddings and every layer's output.
    public func encode(_ ids: [[Int]], padId: Int = 0, allHiddenStates: Bool = false) throws -> (last: Tensor, all: [Tensor]) {
        let tokens = ids.map(\.count).max() ?? 0
        let padded = ids.map { $0 + Array(repeating: padId, count: tokens - $0.count) }
        let masking: AttentionMasking = ids.allSatisfy { $0.count == tokens } ? .none : .padding(lengths: ids.map(\.count))
        var hidden = try embeddings(padded)
        var all = allHiddenStates ? [hidden] : []
        for layer in layers {
            hidden = layer(hidden, masking: masking)
            if allHiddenStates { all.append(hidden) }
        }
        return (hidden, all)
    }

    /// Mean of each sequence's hidden states over its real (unpadded) tokens,
    /// as sentence-transformers' mean pooling: `[B, C]`.
    public func meanPooled(_ last: Tensor, lengths: [Int]) -> Tensor {
        let (tokens, width) = (last.shape[1], last.shape[2])
        return Tensor(shape: [lengths.count, width]) { out in
            for (b, length) in lengths.enumerated() {
                let row = out + b * width
                row.initialize(repeating: 0, count: width)
                for t in 0..<length { addResidual(row, last.unsafeFloatPointer + (b * tokens + t) * width, count: width) }
                for c in 0..<width { row[c] /= Float(max(length, 1)) }
            }
        }
    }
}
