// Port of transformers 5.24 `BertTokenizer` (models/bert/tokenization_bert.py, the
// tokenizers-backed class that `BlipProcessor.from_pretrained` loads for
// Salesforce/blip-image-captioning-*): tokenizers' BertNormalizer, BertPreTokenizer, WordPiece
// model, WordPiece decoder and [CLS] $A [SEP] template, plus the added-token handling of
// `PreTrainedTokenizerBase._from_pretrained` and `TokenizersBackend.__init__`.
//
// This file: the type, its configuration and construction. Encoding (added tokens,
// pre-tokenizer, WordPiece): BertTokenizer+Encoding.swift; decoding: BertTokenizer+Decoding.swift;
// normalizer and character classes: BertNormalizer.swift; reading a checkpoint directory:
// BertTokenizerLoader.swift.

import Foundation

/// Errors thrown while loading a ``BertTokenizer``.
public enum BertTokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The directory holds neither `vocab.txt` nor a `tokenizer.json` with a WordPiece vocabulary.
    case missingVocabulary(directory: String)
    /// A file exists but could not be read or parsed.
    case unreadableFile(path: String, reason: String)
    /// A configuration value has the wrong type.
    case invalidConfiguration(path: String, key: String, reason: String)
    /// A token the tokenizer cannot work without (the unknown token) is not in the vocabulary.
    case tokenNotInVocabulary(role: String, token: String)
    /// A caption prefix was requested but neither the caller nor the tokenizer names a BOS token.
    case missingBosToken

    /// A readable description naming the file, key or token involved.
    public var description: String {
        switch self {
        case .missingVocabulary(let directory):
            return "no vocab.txt or tokenizer.json WordPiece vocabulary in \(directory)"
        case .unreadableFile(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .invalidConfiguration(let path, let key, let reason):
            return "\(path): key '\(key)': \(reason)"
        case .tokenNotInVocabulary(let role, let token):
            return "the \(role) token '\(token)' is not in the vocabulary"
        case .missingBosToken:
            return "no BOS token id: pass the model's text_config.bos_token_id"
        }
    }
}

/// BERT's uncased WordPiece tokenizer, identical to transformers 5.24's `BertTokenizer` as BLIP
/// loads it.
///
/// Encoding runs the same stages as the reference:
/// 1. added tokens whose `normalized` flag is off (the special tokens `[CLS]`, `[SEP]`, `[DEC]`, ...)
///    are split out of the raw text (leftmost-longest, honouring `lstrip`/`rstrip`/`single_word`);
/// 2. every other piece is normalized like tokenizers' `BertNormalizer`: NUL, U+FFFD and control /
///    format / private-use characters are dropped and whitespace becomes a space; CJK ideographs
///    are padded with spaces; accents are stripped (NFD, then non-spacing marks dropped) when
///    `strip_accents` is true or unset with lowercasing on; text is lowercased per scalar;
/// 3. normalized added tokens are split out of the normalized text;
/// 4. the rest is split on whitespace and isolated punctuation (`BertPreTokenizer`);
/// 5. each word is split greedily into the longest vocabulary pieces, continuation pieces carrying
///    `##`; a word longer than 100 scalars or with an unmatchable remainder becomes `[UNK]`;
/// 6. with special tokens, `[CLS] ... [SEP]` is built.
///
/// Character classes follow tokenizers 0.23.3 exactly, including the older Unicode tables it uses
/// for control characters, punctuation and non-spacing marks; they are embedded as ranges
/// (BertNormalizer.swift) and checked code point by code point against the reference by the tests.
///
/// `never_split` and `do_basic_tokenize` from `tokenizer_config.json` are ignored, as they are by the
/// reference (only its legacy pure-Python tokenizer reads them).
public struct BertTokenizer: Sendable {

    /// A token added on top of the WordPiece vocabulary (`tokenizers.AddedToken`).
    public struct AddedToken: Sendable, Hashable {
        /// The token text.
        public var content: String
        /// Special tokens are skipped by ``BertTokenizer/decode(_:skipSpecialTokens:cleanUpTokenizationSpaces:)``
        /// with `skipSpecialTokens`.
        public var special: Bool
        /// Normalized tokens are matched in the normalized text (so `[ENC]` also matches `[enc]`) and
        /// decode as their normalized form; the others are matched in the raw text.
        public var normalized: Bool
        /// Whether the match also swallows whitespace on its left.
        public var lstrip: Bool
        /// Whether the match also swallows whitespace on its right.
        public var rstrip: Bool
        /// Whether the token only matches when not inside a word.
        public var singleWord: Bool

        /// Creates an added token; `normalized` defaults to `!special`, as in `tokenizers`.
        public init(
            _ content: String, special: Bool = false, normalized: Bool? = nil,
            lstrip: Bool = false, rstrip: Bool = false, singleWord: Bool = false
        ) {
            self.content = content
            self.special = special
            self.normalized = normalized ?? !special
            self.lstrip = lstrip
            self.rstrip = rstrip
            self.singleWord = singleWord
        }
    }

    /// The named special-token slots, in transformers' `SPECIAL_TOKENS_ATTRIBUTES` order.
    public enum SpecialTokenRole: String, CaseIterable, Sendable {
        /// `bos_token` (`[DEC]` for BLIP).
        case bos
        /// `eos_token`.
        case eos
        /// `unk_token`.
        case unk
        /// `sep_token`.
        case sep
        /// `pad_token`.
        case pad
        /// `cls_token`.
        case cls
        /// `mask_token`.
        case mask
    }

    /// Settings read from `tokenizer_config.json` (and `special_tokens_map.json`).
    public struct Configuration: Sendable, Equatable {
        /// `do_lower_case`.
        public var doLowerCase: Bool
        /// `strip_accents`; `nil` means "same as `doLowerCase`".
        public var stripAccents: Bool?
        /// `tokenize_chinese_chars`.
        public var tokenizeChineseChars: Bool
        /// `clean_up_tokenization_spaces`; transformers 5 defaults it to `false`.
        public var cleanUpTokenizationSpaces: Bool
        /// Words longer than this (in Unicode scalars) become the unknown token.
        public var maxInputCharsPerWord: Int
        /// The named special tokens (`bos_token`, `unk_token`, ...).
        public var specialTokens: [SpecialTokenRole: AddedToken]
        /// `extra_special_tokens` (formerly `additional_special_tokens`) and model-specific named tokens.
        public var extraSpecialTokens: [AddedToken]

        /// The defaults of transformers' `BertTokenizer.__init__`.
        public init(
            doLowerCase: Bool = true, stripAccents: Bool? = nil, tokenizeChineseChars: Bool = true,
            cleanUpTokenizationSpaces: Bool = false, maxInputCharsPerWord: Int = 100,
            specialTokens: [SpecialTokenRole: AddedToken] = Configuration.defaultSpecialTokens,
            extraSpecialTokens: [AddedToken] = []
        ) {
            self.doLowerCase = doLowerCase
            self.stripAccents = stripAccents
            self.tokenizeChineseChars = tokenizeChineseChars
            self.cleanUpTokenizationSpaces = cleanUpTokenizationSpaces
            self.maxInputCharsPerWord = maxInputCharsPerWord
            self.specialTokens = specialTokens
            self.extraSpecialTokens = extraSpecialTokens
        }

        /// `[UNK]`, `[SEP]`, `[PAD]`, `[CLS]`, `[MASK]`; no BOS or EOS.
        public static let defaultSpecialTokens: [SpecialTokenRole: AddedToken] = [
            .unk: AddedToken("[UNK]", special: true), .sep: AddedToken("[SEP]", special: true),
            .pad: AddedToken("[PAD]", special: true), .cls: AddedToken("[CLS]", special: true),
            .mask: AddedToken("[MASK]", special: true),
        ]
    }

    /// The configuration in effect.
    public let configuration: Configuration
    /// The WordPiece vocabulary; a token's id is its index.
    public let vocabulary: [String]
    /// Added tokens by id (including `[PAD]`, `[CLS]`, ... which keep their vocabulary ids).
    public let addedTokens: [Int: AddedToken]
    /// Number of distinct ids: the vocabulary plus added tokens outside it (`len(tokenizer)`).
    public let vocabularySize: Int
    /// The id of the unknown token.
    public let unkTokenId: Int
    /// The id of the `[CLS]` token that starts encoded sequences.
    public let clsTokenId: Int
    /// The id of the `[SEP]` token that ends encoded sequences.
    public let sepTokenId: Int
    /// The id of the BOS token (`[DEC]` = 30522 for BLIP), if one is configured.
    public let bosTokenId: Int?
    /// The id of the padding token, if one is configured.
    public let padTokenId: Int?

    /// The vocabulary as a scalar trie (exact and longest-prefix lookups).
    let trie: VocabularyTrie
    /// The trie node after `##`, where continuation pieces start; nil when no entry starts so.
    let continuationNode: Int32?
    /// Each added token's text as `token(forId:)` gives it.
    let addedText: [Int: String]
    /// The contents of the special added tokens, which `decode` can skip.
    let specialContents: Set<String>
    /// Added tokens matched in the raw text (the ones not normalized).
    let rawPatterns: [Pattern]
    /// Added tokens matched in the normalized text.
    let normalizedPatterns: [Pattern]

    /// An added token as the encoder matches it: its scalars (normalized for normalized tokens).
    struct Pattern: Sendable {
        var scalars: [Unicode.Scalar]
        var id: Int
        var token: AddedToken
    }

    // MARK: Loading

    /// Loads the tokenizer of a Hugging Face checkpoint directory the way transformers 5.24 does.
    ///
    /// Reads `tokenizer_config.json`; the vocabulary from `tokenizer.json` (`model.vocab`) when present,
    /// else `vocab.txt`; added tokens from `tokenizer_config.json`'s `added_tokens_decoder` or, when
    /// that is absent, from `special_tokens_map.json`, `added_tokens.json` and `tokenizer.json`'s
    /// `added_tokens`. Special tokens missing from all of these are appended after the vocabulary.
    /// - Parameter directory: the checkpoint directory.
    /// - Throws: ``BertTokenizerError``.
    public init(directory: URL) throws {
        let loaded = try Loader.load(directory: directory)
        try self.init(vocabulary: loaded.vocabulary, configuration: loaded.configuration,
                      addedTokens: loaded.addedTokens)
    }

    /// Builds a tokenizer from a vocabulary, a configuration and added tokens.
    ///
    /// Added tokens are registered in order, then the configuration's named special tokens and extra
    /// special tokens that are not yet present. A token already in the vocabulary keeps its id; a new
    /// one gets the next id after the vocabulary and the previously added tokens.
    /// - Throws: ``BertTokenizerError/tokenNotInVocabulary(role:token:)`` when the unknown token is not
    ///   in the vocabulary.
    public init(vocabulary: [String], configuration: Configuration = Configuration(),
                addedTokens: [AddedToken] = []) throws {
        self.configuration = configuration
        self.vocabulary = vocabulary
        let trie = VocabularyTrie(vocabulary)
        self.trie = trie
        self.continuationNode = trie.node(for: Array("##".unicodeScalars))

        // TokenizersBackend.__init__: added tokens, then missing named / extra special tokens.
        var toAdd = addedTokens
        var present = Set(addedTokens.map(\.content))
        for role in SpecialTokenRole.allCases {
            guard var token = configuration.specialTokens[role], !present.contains(token.content) else { continue }
            token.special = true
            toAdd.append(token)
            present.insert(token.content)
        }
        for token in configuration.extraSpecialTokens where !present.contains(token.content) {
            toAdd.append(token)
            present.insert(token.content)
        }
        // tokenizers' AddedVocabulary.add_tokens: id from the vocabulary, else the next free id.
        var byId: [Int: AddedToken] = [:]
        var idByContent: [String: Int] = [:]
        var maxAdded: Int?
        for token in toAdd where !token.content.isEmpty && idByContent[token.content] == nil {
            let id: Int
            if let vocabId = trie.exactId(Array(token.content.unicodeScalars)) {
                id = vocabId
            } else if let m = maxAdded, m >= vocabulary.count {
                id = m + 1
            } else {
                id = vocabulary.count
            }
            byId[id] = token
            idByContent[token.content] = id
            maxAdded = max(maxAdded ?? id, id)
        }
        self.addedTokens = byId
        self.vocabularySize = vocabulary.count + byId.keys.filter { $0 >= vocabulary.count }.count
        self.specialContents = Set(byId.values.filter(\.special).map(\.content))

        // Normalized tokens are matched, and decoded, in their normalized form.
        let normalizer = Normalizer(configuration: configuration)
        var raw: [Pattern] = []
        var normalized: [Pattern] = []
        var text: [Int: String] = [:]
        for (id, token) in byId.sorted(by: { $0.key < $1.key }) {
            if token.normalized {
                let scalars = normalizer.normalize(Array(token.content.unicodeScalars))
                var s = ""
                s.unicodeScalars.append(contentsOf: scalars)
                text[id] = s
                if !scalars.isEmpty { normalized.append(Pattern(scalars: scalars, id: id, token: token)) }
            } else {
                text[id] = token.content
                raw.append(Pattern(scalars: Array(token.content.unicodeScalars), id: id, token: token))
            }
        }
        self.rawPatterns = raw
        self.normalizedPatterns = normalized
        self.addedText = text

        func lookup(_ content: String) -> Int? {
            idByContent[content] ?? trie.exactId(Array(content.unicodeScalars))
        }
        guard let unk = configuration.specialTokens[.unk], let unkId = trie.exactId(Array(unk.content.unicodeScalars))
        else {
            throw BertTokenizerError.tokenNotInVocabulary(
                role: "unk", token: configuration.specialTokens[.unk]?.content ?? "<none>")
        }
        self.unkTokenId = unkId
        func roleId(_ role: SpecialTokenRole) -> Int? {
            configuration.specialTokens[role].map { lookup($0.content) ?? unkId }
        }
        self.clsTokenId = roleId(.cls) ?? 2  // the reference's fallbacks when no token is set
        self.sepTokenId = roleId(.sep) ?? 3
        self.bosTokenId = roleId(.bos)
        self.padTokenId = roleId(.pad)
    }

    /// The id of a named special token (`convert_tokens_to_ids`), or `nil` when the slot is empty.
    public func specialTokenId(_ role: SpecialTokenRole) -> Int? {
        guard let token = configuration.specialTokens[role] else { return nil }
        return tokenId(token.content) ?? unkTokenId
    }

    /// The id of a token text: an added token's, else the vocabulary's; `nil` when unknown.
    public func tokenId(_ token: String) -> Int? {
        if let hit = addedTokens.first(where: { $0.value.content == token }) { return hit.key }
        return trie.exactId(Array(token.unicodeScalars))
    }

    /// The token text of an id as the reference's `convert_ids_to_tokens` gives it (normalized added
    /// tokens in their normalized form); `nil` for ids outside the vocabulary.
    public func token(forId id: Int) -> String? {
        if let t = addedText[id] { return t }
        return id >= 0 && id < vocabulary.count ? vocabulary[id] : nil
    }
}

extension BertTokenizerError: LocalizedError {
    /// The same text as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}
