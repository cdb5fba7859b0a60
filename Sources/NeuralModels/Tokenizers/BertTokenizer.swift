// Port of transformers 5.24 `BertTokenizer` (models/bert/tokenization_bert.py, the
// tokenizers-backed class that `BlipProcessor.from_pretrained` loads for
// Salesforce/blip-image-captioning-*): tokenizers' BertNormalizer, BertPreTokenizer, WordPiece
// model, WordPiece decoder and [CLS] $A [SEP] template, plus the added-token handling of
// `PreTrainedTokenizerBase._from_pretrained` and `TokenizersBackend.__init__`.

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
/// for control characters, punctuation and non-spacing marks; they are embedded below as ranges
/// and checked code point by code point against the reference by the tests.
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

    private let trie: VocabularyTrie
    private let continuationNode: Int32?
    private let addedText: [Int: String]
    private let specialContents: Set<String>
    private let rawPatterns: [Pattern]
    private let normalizedPatterns: [Pattern]

    private struct Pattern: Sendable {
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

    // MARK: Encoding

    /// Encodes text into token ids.
    /// - Parameters:
    ///   - text: the input text.
    ///   - addSpecialTokens: wrap the ids as `[CLS] ... [SEP]` (`build_inputs_with_special_tokens`).
    /// - Returns: the ids, without truncation or padding.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        var ids: [Int] = []
        if addSpecialTokens { ids.append(clsTokenId) }
        let normalizer = Normalizer(configuration: configuration)
        let scalars = Array(text.unicodeScalars)
        for piece in Self.split(scalars, on: rawPatterns) {
            switch piece {
            case .added(let id):
                ids.append(id)
            case .text(let range):
                let normalized = normalizer.normalize(Array(scalars[range]))
                for inner in Self.split(normalized, on: normalizedPatterns) {
                    switch inner {
                    case .added(let id):
                        ids.append(id)
                    case .text(let r):
                        Self.forEachWord(normalized[r]) { word in wordPiece(word, into: &ids) }
                    }
                }
            }
        }
        if addSpecialTokens { ids.append(sepTokenId) }
        return ids
    }

    /// The token texts of `encode(text, addSpecialTokens: false)`.
    public func tokenize(_ text: String) -> [String] {
        encode(text, addSpecialTokens: false).map { token(forId: $0) ?? "" }
    }

    /// The decoder input BLIP starts caption generation from.
    ///
    /// `BlipForConditionalGeneration.generate` tokenizes a text prompt as `[CLS] prompt [SEP]`,
    /// replaces the first id with `config.text_config.bos_token_id` and drops the last id (the
    /// `[SEP]`); without a prompt it starts from `[bos]` alone. For "a picture of" this gives
    /// `[30522, 1037, 3861, 1997]`.
    /// - Parameters:
    ///   - prompt: the text prompt, or `nil` for unconditional captioning.
    ///   - bosTokenId: the model's `text_config.bos_token_id`; defaults to this tokenizer's BOS id.
    /// - Throws: ``BertTokenizerError/missingBosToken`` when neither is available.
    public func captionPrefix(prompt: String?, bosTokenId: Int? = nil) throws -> [Int] {
        guard let bos = bosTokenId ?? self.bosTokenId else { throw BertTokenizerError.missingBosToken }
        guard let prompt else { return [bos] }
        var ids = encode(prompt, addSpecialTokens: true)
        ids[0] = bos
        ids.removeLast()
        return ids
    }

    /// The normalized text (`BertNormalizer`) of a string.
    public func normalize(_ text: String) -> String {
        var s = ""
        s.unicodeScalars.append(contentsOf: Normalizer(configuration: configuration).normalize(Array(text.unicodeScalars)))
        return s
    }

    /// The words `BertPreTokenizer` splits a (normalized) string into: whitespace removed,
    /// punctuation isolated.
    public func preTokenize(_ text: String) -> [String] {
        var words: [String] = []
        Self.forEachWord(Array(text.unicodeScalars)[...]) { word in
            var s = ""
            s.unicodeScalars.append(contentsOf: word)
            words.append(s)
        }
        return words
    }

    private enum Piece {
        case text(Range<Int>)
        case added(Int)
    }

    /// tokenizers' `AddedVocabulary::find_matches`: leftmost-longest, non-overlapping.
    private static func split(_ s: [Unicode.Scalar], on patterns: [Pattern]) -> [Piece] {
        guard !patterns.isEmpty, !s.isEmpty else { return s.isEmpty ? [] : [.text(0..<s.count)] }
        var pieces: [Piece] = []
        var offset = 0
        var i = 0
        while i < s.count {
            guard patterns.contains(where: { $0.scalars[0] == s[i] }) else {
                i += 1
                continue
            }
            var best: Pattern?
            for p in patterns where p.scalars.count > (best?.scalars.count ?? 0) && i + p.scalars.count <= s.count {
                var ok = true
                for k in 0..<p.scalars.count where s[i + k] != p.scalars[k] {
                    ok = false
                    break
                }
                if ok { best = p }
            }
            guard let match = best else {
                i += 1
                continue
            }
            var start = i
            var stop = i + match.scalars.count
            i = stop
            if match.token.singleWord {
                let startOK = start == 0 || !isWordCharacter(s[start - 1])
                let stopOK = stop == s.count || !isWordCharacter(s[stop])
                if !startOK || !stopOK { continue }
            }
            if match.token.lstrip {
                var j = start
                while j > 0 && CharacterClasses.isWhitespace(s[j - 1].value) { j -= 1 }
                start = max(j, offset)
            }
            if match.token.rstrip {
                while stop < s.count && CharacterClasses.isWhitespace(s[stop].value) { stop += 1 }
            }
            if offset < start { pieces.append(.text(offset..<start)) }
            pieces.append(.added(match.id))
            offset = stop
        }
        if offset < s.count { pieces.append(.text(offset..<s.count)) }
        return pieces
    }

    private static func isWordCharacter(_ c: Unicode.Scalar) -> Bool {
        c == "_" || c.properties.isAlphabetic || c.properties.numericType != nil
    }

    /// `BertPreTokenizer`: split on whitespace (removed) and punctuation (isolated).
    private static func forEachWord(_ s: ArraySlice<Unicode.Scalar>, _ body: (ArraySlice<Unicode.Scalar>) -> Void) {
        var start = s.startIndex
        var i = s.startIndex
        while i < s.endIndex {
            let v = s[i].value
            if CharacterClasses.isWhitespace(v) {
                if start < i { body(s[start..<i]) }
                start = i + 1
            } else if CharacterClasses.isPunctuation(v) {
                if start < i { body(s[start..<i]) }
                body(s[i...i])
                start = i + 1
            }
            i += 1
        }
        if start < s.endIndex { body(s[start..<s.endIndex]) }
    }

    /// tokenizers' `WordPiece::tokenize`: greedy longest match, `##` continuations.
    private func wordPiece(_ word: ArraySlice<Unicode.Scalar>, into ids: inout [Int]) {
        if word.count > configuration.maxInputCharsPerWord {
            ids.append(unkTokenId)
            return
        }
        let mark = ids.count
        var start = word.startIndex
        while start < word.endIndex {
            let root: Int32
            if start == word.startIndex {
                root = 0
            } else if let c = continuationNode {
                root = c
            } else {
                ids.removeSubrange(mark...)
                ids.append(unkTokenId)
                return
            }
            var node = root
            var best: (end: Int, id: Int)?
            var j = start
            while j < word.endIndex, let next = trie.child(node, word[j].value) {
                node = next
                j += 1
                if let id = trie.id(node) { best = (j, id) }
            }
            guard let match = best else {
                ids.removeSubrange(mark...)
                ids.append(unkTokenId)
                return
            }
            ids.append(match.id)
            start = match.end
        }
    }

    // MARK: Decoding

    /// Decodes ids into text exactly like transformers 5.24's `tokenizer.decode`.
    ///
    /// Ids become tokens (unknown ids are dropped); special tokens are skipped when asked; the
    /// WordPiece decoder joins tokens with spaces, glues `##` continuations to the previous token
    /// (a leading `##` piece keeps its `##`, as in the reference) and cleans each token
    /// (" ." → ".", " ," → ",", " n't", " 's", ...); finally, with `clean_up_tokenization_spaces`,
    /// transformers' `clean_up_tokenization` runs on the whole string (which also turns " ' " into "'").
    /// - Parameters:
    ///   - ids: token ids.
    ///   - skipSpecialTokens: drop special tokens (`skip_special_tokens=True`, what BLIP captions use).
    ///   - cleanUpTokenizationSpaces: overrides the configuration's `clean_up_tokenization_spaces`.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true, cleanUpTokenizationSpaces: Bool? = nil) -> String {
        var out: [UInt8] = []
        var index = 0
        for id in ids {
            guard let token = token(forId: id) else { continue }
            if skipSpecialTokens && specialContents.contains(token) { continue }
            var piece = Array(token.utf8)
            if index != 0 {
                if piece.starts(with: [0x23, 0x23]) {
                    piece.removeFirst(2)
                } else {
                    piece.insert(0x20, at: 0)
                }
            }
            out += Self.replaceAll(piece, Self.decoderCleanup)
            index += 1
        }
        if cleanUpTokenizationSpaces ?? configuration.cleanUpTokenizationSpaces {
            out = Self.replaceAll(out, Self.cleanUpTokenization)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// tokenizers' `decoders::wordpiece::cleanup`, applied to each token.
    private static let decoderCleanup: [([UInt8], [UInt8])] = [
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
        (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ].map { (Array($0.0.utf8), Array($0.1.utf8)) }

    /// transformers' `PreTrainedTokenizerBase.clean_up_tokenization`.
    private static let cleanUpTokenization: [([UInt8], [UInt8])] = [
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
        (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ].map { (Array($0.0.utf8), Array($0.1.utf8)) }

    /// Sequential literal `str.replace` of each (pattern, replacement), left to right, non-overlapping.
    private static func replaceAll(_ input: [UInt8], _ rules: [([UInt8], [UInt8])]) -> [UInt8] {
        var s = input
        for (pattern, replacement) in rules where s.count >= pattern.count {
            guard s.firstIndex(of: pattern[0]) != nil else { continue }
            var result: [UInt8] = []
            result.reserveCapacity(s.count)
            var i = 0
            var changed = false
            while i < s.count {
                if s[i] == pattern[0] && i + pattern.count <= s.count && s[i..<(i + pattern.count)].elementsEqual(pattern) {
                    result += replacement
                    i += pattern.count
                    changed = true
                } else {
                    result.append(s[i])
                    i += 1
                }
            }
            if changed { s = result }
        }
        return s
    }
}

// MARK: - Normalizer

/// tokenizers' `BertNormalizer` over Unicode scalars.
private struct Normalizer {
    let cleanText = true
    let chinese: Bool
    let stripAccents: Bool
    let lowercase: Bool

    init(configuration: BertTokenizer.Configuration) {
        chinese = configuration.tokenizeChineseChars
        stripAccents = configuration.stripAccents ?? configuration.doLowerCase
        lowercase = configuration.doLowerCase
    }

    func normalize(_ input: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var s: [Unicode.Scalar] = []
        s.reserveCapacity(input.count + 8)
        var ascii = true
        for c in input {
            let v = c.value
            if cleanText {
                if v == 0 || v == 0xFFFD || CharacterClasses.isControl(v) { continue }
                if CharacterClasses.isBertWhitespace(v) {
                    s.append(" ")
                    continue
                }
            }
            if chinese && CharacterClasses.isChinese(v) {
                s.append(" ")
                s.append(c)
                s.append(" ")
                ascii = false
                continue
            }
            if v >= 0x80 { ascii = false }
            s.append(c)
        }
        if stripAccents && !ascii {
            s = Self.nfd(s).filter { !CharacterClasses.isNonspacingMark($0.value) }
        }
        if lowercase {
            var lower: [Unicode.Scalar] = []
            lower.reserveCapacity(s.count)
            for c in s {
                if c.value < 0x80 {
                    lower.append(c.value >= 0x41 && c.value <= 0x5A ? Unicode.Scalar(c.value + 32)! : c)
                } else {
                    lower.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
                }
            }
            s = lower
        }
        return s
    }

    /// Canonical decomposition (NFD) of a scalar sequence, with the reference's Unicode coverage.
    ///
    /// The reference's normalization tables predate Unicode 13: it leaves characters assigned since
    /// (e.g. U+11938 DIVES AKURU VOWEL SIGN O) undecomposed and gives them combining class 0, so
    /// they pass through here unchanged and bound the runs that are decomposed.
    static func nfd(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        // Scalars below U+00C0 have no decomposition and combining class 0.
        guard s.contains(where: { $0.value >= 0xC0 }) else { return s }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count + 4)
        var run = ""
        func flush() {
            guard !run.isEmpty else { return }
            out.append(contentsOf: run.decomposedStringWithCanonicalMapping.unicodeScalars)
            run = ""
        }
        for c in s {
            if c.value >= 0x300, let age = c.properties.age, age.major >= 13 {
                flush()
                out.append(c)
            } else {
                run.unicodeScalars.append(c)
            }
        }
        flush()
        return out
    }
}

// MARK: - Vocabulary trie

/// The WordPiece vocabulary as a scalar trie: exact lookups without `String` canonical
/// equivalence, and longest-prefix matches for the greedy WordPiece loop.
private struct VocabularyTrie: Sendable {
    private var children: [UInt64: Int32] = [:]
    private var ids: [Int32] = [-1]

    init(_ vocabulary: [String]) {
        children.reserveCapacity(vocabulary.count * 4)
        for (id, token) in vocabulary.enumerated() {
            var node: Int32 = 0
            for c in token.unicodeScalars {
                let key = UInt64(UInt32(node)) << 21 | UInt64(c.value)
                if let next = children[key] {
                    node = next
                } else {
                    let next = Int32(ids.count)
                    ids.append(-1)
                    children[key] = next
                    node = next
                }
            }
            ids[Int(node)] = Int32(id)  // a repeated token keeps its last id, like the reference's dict
        }
    }

    func child(_ node: Int32, _ scalar: UInt32) -> Int32? {
        children[UInt64(UInt32(node)) << 21 | UInt64(scalar)]
    }

    func id(_ node: Int32) -> Int? {
        let v = ids[Int(node)]
        return v < 0 ? nil : Int(v)
    }

    func node(for scalars: [Unicode.Scalar]) -> Int32? {
        var node: Int32 = 0
        for c in scalars {
            guard let next = child(node, c.value) else { return nil }
            node = next
        }
        return node
    }

    func exactId(_ scalars: [Unicode.Scalar]) -> Int? {
        node(for: scalars).flatMap(id)
    }
}

// MARK: - Character classes

/// Character classes of tokenizers 0.23.3's BERT normalizer and pre-tokenizer.
///
/// `control`, `punctuation` (non-ASCII part) and `nonspacingMark` are the sets the reference's
/// `unicode_categories` tables give (an older Unicode version than Swift's, so Swift's own
/// general categories would disagree on characters assigned or recategorised since). They were
/// derived by running every code point through the reference's `BertNormalizer` and
/// `BertPreTokenizer`; the `sweep` goldens re-check every code point.
private enum CharacterClasses {
    /// Cc / Cf / Co characters removed by `clean_text` (besides U+0000 and U+FFFD); `\t\n\r` excluded.
    static func isControl(_ v: UInt32) -> Bool {
        v < 0x20 ? (v != 0x09 && v != 0x0A && v != 0x0D) : (v >= 0x7F && contains(control, v))
    }

    /// `clean_text`'s whitespace: `\t\n\r` and Rust's `char::is_whitespace` (White_Space).
    static func isBertWhitespace(_ v: UInt32) -> Bool { isWhitespace(v) }

    /// Rust's `char::is_whitespace` (the Unicode White_Space property).
    static func isWhitespace(_ v: UInt32) -> Bool {
        switch v {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// `is_bert_punc`: ASCII punctuation or the reference's Unicode punctuation (P*).
    static func isPunctuation(_ v: UInt32) -> Bool {
        if v < 0x80 {
            return (v >= 0x21 && v <= 0x2F) || (v >= 0x3A && v <= 0x40) || (v >= 0x5B && v <= 0x60)
                || (v >= 0x7B && v <= 0x7E)
        }
        return contains(punctuation, v)
    }

    /// The CJK ideograph blocks `handle_chinese_chars` pads with spaces.
    static func isChinese(_ v: UInt32) -> Bool {
        switch v {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }

    /// Mn characters removed after NFD by `strip_accents`.
    static func isNonspacingMark(_ v: UInt32) -> Bool {
        v >= 0x300 && contains(nonspacingMark, v)
    }

    private static func contains(_ table: [ClosedRange<UInt32>], _ v: UInt32) -> Bool {
        var lo = 0
        var hi = table.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if table[mid].upperBound < v {
                lo = mid + 1
            } else {
                hi = mid
            }
        }
        return lo < table.count && table[lo].contains(v)
    }

    static let control: [ClosedRange<UInt32>] = [
        0x1...0x8, 0xB...0xC, 0xE...0x1F, 0x7F...0x9F, 0xAD...0xAD, 0x600...0x605, 0x61C...0x61C,
        0x6DD...0x6DD, 0x70F...0x70F, 0x180E...0x180E, 0x200B...0x200F, 0x202A...0x202E,
        0x2060...0x2064, 0x2066...0x206F, 0xE000...0xF8FF, 0xFEFF...0xFEFF, 0xFFF9...0xFFFB,
        0x110BD...0x110BD, 0x1BCA0...0x1BCA3, 0x1D173...0x1D17A, 0xE0001...0xE0001,
        0xE0020...0xE007F, 0xF0000...0xFFFFD, 0x100000...0x10FFFD,
    ]
    static let punctuation: [ClosedRange<UInt32>] = [
        0xA1...0xA1, 0xA7...0xA7, 0xAB...0xAB, 0xB6...0xB7, 0xBB...0xBB, 0xBF...0xBF, 0x37E...0x37E,
        0x387...0x387, 0x55A...0x55F, 0x589...0x58A, 0x5BE...0x5BE, 0x5C0...0x5C0, 0x5C3...0x5C3,
        0x5C6...0x5C6, 0x5F3...0x5F4, 0x609...0x60A, 0x60C...0x60D, 0x61B...0x61B, 0x61E...0x61F,
        0x66A...0x66D, 0x6D4...0x6D4, 0x700...0x70D, 0x7F7...0x7F9, 0x830...0x83E, 0x85E...0x85E,
        0x964...0x965, 0x970...0x970, 0xAF0...0xAF0, 0xDF4...0xDF4, 0xE4F...0xE4F, 0xE5A...0xE5B,
        0xF04...0xF12, 0xF14...0xF14, 0xF3A...0xF3D, 0xF85...0xF85, 0xFD0...0xFD4, 0xFD9...0xFDA,
        0x104A...0x104F, 0x10FB...0x10FB, 0x1360...0x1368, 0x1400...0x1400, 0x166D...0x166E,
        0x169B...0x169C, 0x16EB...0x16ED, 0x1735...0x1736, 0x17D4...0x17D6, 0x17D8...0x17DA,
        0x1800...0x180A, 0x1944...0x1945, 0x1A1E...0x1A1F, 0x1AA0...0x1AA6, 0x1AA8...0x1AAD,
        0x1B5A...0x1B60, 0x1BFC...0x1BFF, 0x1C3B...0x1C3F, 0x1C7E...0x1C7F, 0x1CC0...0x1CC7,
        0x1CD3...0x1CD3, 0x2010...0x2027, 0x2030...0x2043, 0x2045...0x2051, 0x2053...0x205E,
        0x207D...0x207E, 0x208D...0x208E, 0x2308...0x230B, 0x2329...0x232A, 0x2768...0x2775,
        0x27C5...0x27C6, 0x27E6...0x27EF, 0x2983...0x2998, 0x29D8...0x29DB, 0x29FC...0x29FD,
        0x2CF9...0x2CFC, 0x2CFE...0x2CFF, 0x2D70...0x2D70, 0x2E00...0x2E2E, 0x2E30...0x2E42,
        0x3001...0x3003, 0x3008...0x3011, 0x3014...0x301F, 0x3030...0x3030, 0x303D...0x303D,
        0x30A0...0x30A0, 0x30FB...0x30FB, 0xA4FE...0xA4FF, 0xA60D...0xA60F, 0xA673...0xA673,
        0xA67E...0xA67E, 0xA6F2...0xA6F7, 0xA874...0xA877, 0xA8CE...0xA8CF, 0xA8F8...0xA8FA,
        0xA8FC...0xA8FC, 0xA92E...0xA92F, 0xA95F...0xA95F, 0xA9C1...0xA9CD, 0xA9DE...0xA9DF,
        0xAA5C...0xAA5F, 0xAADE...0xAADF, 0xAAF0...0xAAF1, 0xABEB...0xABEB, 0xFD3E...0xFD3F,
        0xFE10...0xFE19, 0xFE30...0xFE52, 0xFE54...0xFE61, 0xFE63...0xFE63, 0xFE68...0xFE68,
        0xFE6A...0xFE6B, 0xFF01...0xFF03, 0xFF05...0xFF0A, 0xFF0C...0xFF0F, 0xFF1A...0xFF1B,
        0xFF1F...0xFF20, 0xFF3B...0xFF3D, 0xFF3F...0xFF3F, 0xFF5B...0xFF5B, 0xFF5D...0xFF5D,
        0xFF5F...0xFF65, 0x10100...0x10102, 0x1039F...0x1039F, 0x103D0...0x103D0, 0x1056F...0x1056F,
        0x10857...0x10857, 0x1091F...0x1091F, 0x1093F...0x1093F, 0x10A50...0x10A58,
        0x10A7F...0x10A7F, 0x10AF0...0x10AF6, 0x10B39...0x10B3F, 0x10B99...0x10B9C,
        0x11047...0x1104D, 0x110BB...0x110BC, 0x110BE...0x110C1, 0x11140...0x11143,
        0x11174...0x11175, 0x111C5...0x111C9, 0x111CD...0x111CD, 0x111DB...0x111DB,
        0x111DD...0x111DF, 0x11238...0x1123D, 0x112A9...0x112A9, 0x114C6...0x114C6,
        0x115C1...0x115D7, 0x11641...0x11643, 0x1173C...0x1173E, 0x12470...0x12474,
        0x16A6E...0x16A6F, 0x16AF5...0x16AF5, 0x16B37...0x16B3B, 0x16B44...0x16B44,
        0x1BC9F...0x1BC9F, 0x1DA87...0x1DA8B,
    ]
    static let nonspacingMark: [ClosedRange<UInt32>] = [
        0x300...0x36F, 0x483...0x487, 0x591...0x5BD, 0x5BF...0x5BF, 0x5C1...0x5C2, 0x5C4...0x5C5,
        0x5C7...0x5C7, 0x610...0x61A, 0x64B...0x65F, 0x670...0x670, 0x6D6...0x6DC, 0x6DF...0x6E4,
        0x6E7...0x6E8, 0x6EA...0x6ED, 0x711...0x711, 0x730...0x74A, 0x7A6...0x7B0, 0x7EB...0x7F3,
        0x816...0x819, 0x81B...0x823, 0x825...0x827, 0x829...0x82D, 0x859...0x85B, 0x8E3...0x902,
        0x93A...0x93A, 0x93C...0x93C, 0x941...0x948, 0x94D...0x94D, 0x951...0x957, 0x962...0x963,
        0x981...0x981, 0x9BC...0x9BC, 0x9C1...0x9C4, 0x9CD...0x9CD, 0x9E2...0x9E3, 0xA01...0xA02,
        0xA3C...0xA3C, 0xA41...0xA42, 0xA47...0xA48, 0xA4B...0xA4D, 0xA51...0xA51, 0xA70...0xA71,
        0xA75...0xA75, 0xA81...0xA82, 0xABC...0xABC, 0xAC1...0xAC5, 0xAC7...0xAC8, 0xACD...0xACD,
        0xAE2...0xAE3, 0xB01...0xB01, 0xB3C...0xB3C, 0xB3F...0xB3F, 0xB41...0xB44, 0xB4D...0xB4D,
        0xB56...0xB56, 0xB62...0xB63, 0xB82...0xB82, 0xBC0...0xBC0, 0xBCD...0xBCD, 0xC00...0xC00,
        0xC3E...0xC40, 0xC46...0xC48, 0xC4A...0xC4D, 0xC55...0xC56, 0xC62...0xC63, 0xC81...0xC81,
        0xCBC...0xCBC, 0xCBF...0xCBF, 0xCC6...0xCC6, 0xCCC...0xCCD, 0xCE2...0xCE3, 0xD01...0xD01,
        0xD41...0xD44, 0xD4D...0xD4D, 0xD62...0xD63, 0xDCA...0xDCA, 0xDD2...0xDD4, 0xDD6...0xDD6,
        0xE31...0xE31, 0xE34...0xE3A, 0xE47...0xE4E, 0xEB1...0xEB1, 0xEB4...0xEB9, 0xEBB...0xEBC,
        0xEC8...0xECD, 0xF18...0xF19, 0xF35...0xF35, 0xF37...0xF37, 0xF39...0xF39, 0xF71...0xF7E,
        0xF80...0xF84, 0xF86...0xF87, 0xF8D...0xF97, 0xF99...0xFBC, 0xFC6...0xFC6, 0x102D...0x1030,
        0x1032...0x1037, 0x1039...0x103A, 0x103D...0x103E, 0x1058...0x1059, 0x105E...0x1060,
        0x1071...0x1074, 0x1082...0x1082, 0x1085...0x1086, 0x108D...0x108D, 0x109D...0x109D,
        0x135D...0x135F, 0x1712...0x1714, 0x1732...0x1734, 0x1752...0x1753, 0x1772...0x1773,
        0x17B4...0x17B5, 0x17B7...0x17BD, 0x17C6...0x17C6, 0x17C9...0x17D3, 0x17DD...0x17DD,
        0x180B...0x180D, 0x18A9...0x18A9, 0x1920...0x1922, 0x1927...0x1928, 0x1932...0x1932,
        0x1939...0x193B, 0x1A17...0x1A18, 0x1A1B...0x1A1B, 0x1A56...0x1A56, 0x1A58...0x1A5E,
        0x1A60...0x1A60, 0x1A62...0x1A62, 0x1A65...0x1A6C, 0x1A73...0x1A7C, 0x1A7F...0x1A7F,
        0x1AB0...0x1ABD, 0x1B00...0x1B03, 0x1B34...0x1B34, 0x1B36...0x1B3A, 0x1B3C...0x1B3C,
        0x1B42...0x1B42, 0x1B6B...0x1B73, 0x1B80...0x1B81, 0x1BA2...0x1BA5, 0x1BA8...0x1BA9,
        0x1BAB...0x1BAD, 0x1BE6...0x1BE6, 0x1BE8...0x1BE9, 0x1BED...0x1BED, 0x1BEF...0x1BF1,
        0x1C2C...0x1C33, 0x1C36...0x1C37, 0x1CD0...0x1CD2, 0x1CD4...0x1CE0, 0x1CE2...0x1CE8,
        0x1CED...0x1CED, 0x1CF4...0x1CF4, 0x1CF8...0x1CF9, 0x1DC0...0x1DF5, 0x1DFC...0x1DFF,
        0x20D0...0x20DC, 0x20E1...0x20E1, 0x20E5...0x20F0, 0x2CEF...0x2CF1, 0x2D7F...0x2D7F,
        0x2DE0...0x2DFF, 0x302A...0x302D, 0x3099...0x309A, 0xA66F...0xA66F, 0xA674...0xA67D,
        0xA69E...0xA69F, 0xA6F0...0xA6F1, 0xA802...0xA802, 0xA806...0xA806, 0xA80B...0xA80B,
        0xA825...0xA826, 0xA8C4...0xA8C4, 0xA8E0...0xA8F1, 0xA926...0xA92D, 0xA947...0xA951,
        0xA980...0xA982, 0xA9B3...0xA9B3, 0xA9B6...0xA9B9, 0xA9BC...0xA9BC, 0xA9E5...0xA9E5,
        0xAA29...0xAA2E, 0xAA31...0xAA32, 0xAA35...0xAA36, 0xAA43...0xAA43, 0xAA4C...0xAA4C,
        0xAA7C...0xAA7C, 0xAAB0...0xAAB0, 0xAAB2...0xAAB4, 0xAAB7...0xAAB8, 0xAABE...0xAABF,
        0xAAC1...0xAAC1, 0xAAEC...0xAAED, 0xAAF6...0xAAF6, 0xABE5...0xABE5, 0xABE8...0xABE8,
        0xABED...0xABED, 0xFB1E...0xFB1E, 0xFE00...0xFE0F, 0xFE20...0xFE2F, 0x101FD...0x101FD,
        0x102E0...0x102E0, 0x10376...0x1037A, 0x10A01...0x10A03, 0x10A05...0x10A06,
        0x10A0C...0x10A0F, 0x10A38...0x10A3A, 0x10A3F...0x10A3F, 0x10AE5...0x10AE6,
        0x11001...0x11001, 0x11038...0x11046, 0x1107F...0x11081, 0x110B3...0x110B6,
        0x110B9...0x110BA, 0x11100...0x11102, 0x11127...0x1112B, 0x1112D...0x11134,
        0x11173...0x11173, 0x11180...0x11181, 0x111B6...0x111BE, 0x111CA...0x111CC,
        0x1122F...0x11231, 0x11234...0x11234, 0x11236...0x11237, 0x112DF...0x112DF,
        0x112E3...0x112EA, 0x11300...0x11301, 0x1133C...0x1133C, 0x11340...0x11340,
        0x11366...0x1136C, 0x11370...0x11374, 0x114B3...0x114B8, 0x114BA...0x114BA,
        0x114BF...0x114C0, 0x114C2...0x114C3, 0x115B2...0x115B5, 0x115BC...0x115BD,
        0x115BF...0x115C0, 0x115DC...0x115DD, 0x11633...0x1163A, 0x1163D...0x1163D,
        0x1163F...0x11640, 0x116AB...0x116AB, 0x116AD...0x116AD, 0x116B0...0x116B5,
        0x116B7...0x116B7, 0x1171D...0x1171F, 0x11722...0x11725, 0x11727...0x1172B,
        0x16AF0...0x16AF4, 0x16B30...0x16B36, 0x16F8F...0x16F92, 0x1BC9D...0x1BC9E,
        0x1D167...0x1D169, 0x1D17B...0x1D182, 0x1D185...0x1D18B, 0x1D1AA...0x1D1AD,
        0x1D242...0x1D244, 0x1DA00...0x1DA36, 0x1DA3B...0x1DA6C, 0x1DA75...0x1DA75,
        0x1DA84...0x1DA84, 0x1DA9B...0x1DA9F, 0x1DAA1...0x1DAAF, 0x1E8D0...0x1E8D6,
        0xE0100...0xE01EF,
    ]
}

// MARK: - Loading a checkpoint directory

/// transformers 5.24's `PreTrainedTokenizerBase._from_pretrained` + `TokenizersBackend` file
/// handling, reduced to what a `BertTokenizer` reads.
private enum Loader {
    struct Result {
        var vocabulary: [String]
        var configuration: BertTokenizer.Configuration
        var addedTokens: [BertTokenizer.AddedToken]
    }

    static func load(directory: URL) throws -> Result {
        let fm = FileManager.default
        func file(_ name: String) -> URL? {
            let url = directory.appendingPathComponent(name)
            return fm.fileExists(atPath: url.path) ? url : nil
        }
        let configURL = file("tokenizer_config.json")
        var config: [String: Any] = try configURL.map { try readObject($0) } ?? [:]
        let configPath = configURL?.path ?? directory.appendingPathComponent("tokenizer_config.json").path
        let tokenizerJSON: [String: Any]? = try file("tokenizer.json").map { try readObject($0) }

        // Vocabulary: tokenizer.json's model.vocab takes precedence (convert_to_native_format).
        let vocabulary: [String]
        if let model = tokenizerJSON?["model"] as? [String: Any], let vocab = model["vocab"] as? [String: Any] {
            var byId = [String](repeating: "", count: vocab.count)
            for (token, value) in vocab {
                guard let id = (value as? NSNumber)?.intValue, id >= 0 else { continue }
                if id >= byId.count { byId += [String](repeating: "", count: id + 1 - byId.count) }
                byId[id] = token
            }
            vocabulary = byId
        } else if let url = file("vocab.txt") {
            vocabulary = try readVocabulary(url)
        } else {
            throw BertTokenizerError.missingVocabulary(directory: directory.path)
        }

        // V5: additional_special_tokens -> extra_special_tokens.
        if config["additional_special_tokens"] != nil && !isTruthy(config["extra_special_tokens"]) {
            config["extra_special_tokens"] = config.removeValue(forKey: "additional_special_tokens")
        }
        let roleKeys = Set(BertTokenizer.SpecialTokenRole.allCases.map { $0.rawValue + "_token" })
        // Model-specific named special tokens (`*_token` string keys outside the standard slots).
        var modelSpecific: [(String, Any)] = config
            .filter { !roleKeys.contains($0.key) && $0.key.hasSuffix("_token") && $0.value is String }
            .sorted { $0.key < $1.key }
            .map { ($0.key, $0.value) }
        if let dict = config["extra_special_tokens"] as? [String: Any] {
            modelSpecific += dict.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            config.removeValue(forKey: "extra_special_tokens")
        }

        var decoder: [Int: BertTokenizer.AddedToken] = [:]
        if let atd = config["added_tokens_decoder"] {
            guard let entries = atd as? [String: Any] else {
                throw BertTokenizerError.invalidConfiguration(path: configPath, key: "added_tokens_decoder",
                                                              reason: "not an object")
            }
            for (key, value) in entries {
                guard let id = Int(key), let token = try addedToken(value, path: configPath, key: "added_tokens_decoder")
                else {
                    throw BertTokenizerError.invalidConfiguration(path: configPath, key: "added_tokens_decoder",
                                                                  reason: "bad entry '\(key)'")
                }
                decoder[id] = token
            }
        } else {
            if let url = file("special_tokens_map.json") {
                let map = try readObject(url)
                for (key, value) in map {
                    if key == "extra_special_tokens", let list = value as? [Any] {
                        var existing = config["extra_special_tokens"] as? [Any] ?? []
                        for item in list {
                            var item = item
                            if var dict = item as? [String: Any] {
                                dict["special"] = true
                                item = dict
                            }
                            let content = try addedToken(item, path: url.path, key: key)?.content
                            let known = try existing.contains { try addedToken($0, path: url.path, key: key)?.content == content }
                            if !known { existing.append(item) }
                        }
                        config[key] = existing
                    } else if var dict = value as? [String: Any] {
                        dict["special"] = true
                        config[key] = dict
                    } else {
                        config[key] = value
                    }
                }
            }
            if let url = file("added_tokens.json") {
                var special = Set<String>()
                for key in roleKeys {
                    if let token = try config[key].flatMap({ try addedToken($0, path: configPath, key: key) }) {
                        special.insert(token.content)
                    }
                }
                for item in config["extra_special_tokens"] as? [Any] ?? [] {
                    if let token = try addedToken(item, path: configPath, key: "extra_special_tokens") {
                        special.insert(token.content)
                    }
                }
                for (content, value) in try readObject(url) {
                    guard let id = (value as? NSNumber)?.intValue else {
                        throw BertTokenizerError.invalidConfiguration(path: url.path, key: content, reason: "id is not a number")
                    }
                    let isSpecial = special.contains(content)
                    decoder[id] = BertTokenizer.AddedToken(content, special: isSpecial, normalized: !isSpecial)
                }
            }
            if let list = tokenizerJSON?["added_tokens"] as? [Any] {
                for item in list {
                    guard let dict = item as? [String: Any], let id = (dict["id"] as? NSNumber)?.intValue,
                          let token = try addedToken(dict, path: "tokenizer.json", key: "added_tokens")
                    else { continue }
                    decoder[id] = token
                }
            }
        }
        // PreTrainedTokenizerBase.__init__: a leftover additional_special_tokens becomes the extras.
        if config["extra_special_tokens"] == nil, let extra = config.removeValue(forKey: "additional_special_tokens") {
            config["extra_special_tokens"] = extra
        }

        var configuration = BertTokenizer.Configuration()
        configuration.doLowerCase = try bool(config, "do_lower_case", path: configPath) ?? true
        configuration.stripAccents = try bool(config, "strip_accents", path: configPath)
        configuration.tokenizeChineseChars = try bool(config, "tokenize_chinese_chars", path: configPath) ?? true
        configuration.cleanUpTokenizationSpaces = try bool(config, "clean_up_tokenization_spaces", path: configPath) ?? false
        for role in BertTokenizer.SpecialTokenRole.allCases {
            let key = role.rawValue + "_token"
            guard let value = config[key] else { continue }  // absent: BertTokenizer's default
            if var token = try addedToken(value, path: configPath, key: key) {
                token.special = true
                configuration.specialTokens[role] = token
            } else {
                configuration.specialTokens[role] = nil
            }
        }
        var extras: [BertTokenizer.AddedToken] = []
        for (key, value) in modelSpecific {
            if var token = try addedToken(value, path: configPath, key: key) {
                token.special = true
                extras.append(token)
            }
        }
        for item in config["extra_special_tokens"] as? [Any] ?? [] {
            if let token = try addedToken(item, path: configPath, key: "extra_special_tokens") {
                extras.append(token)
            }
        }
        configuration.extraSpecialTokens = extras

        let added = decoder.sorted { $0.key < $1.key }.map(\.value)
        return Result(vocabulary: vocabulary, configuration: configuration, addedTokens: added)
    }

    /// A string (special, not normalized) or an `AddedToken` object; `nil` for JSON null.
    static func addedToken(_ value: Any, path: String, key: String) throws -> BertTokenizer.AddedToken? {
        if value is NSNull { return nil }
        if let s = value as? String { return BertTokenizer.AddedToken(s, special: true) }
        guard let dict = value as? [String: Any], let content = dict["content"] as? String else {
            throw BertTokenizerError.invalidConfiguration(path: path, key: key, reason: "not a token string or object")
        }
        func flag(_ name: String) -> Bool? { (dict[name] as? NSNumber)?.boolValue }
        let special = flag("special") ?? false
        return BertTokenizer.AddedToken(
            content, special: special, normalized: flag("normalized") ?? !special,
            lstrip: flag("lstrip") ?? false, rstrip: flag("rstrip") ?? false, singleWord: flag("single_word") ?? false)
    }

    static func isTruthy(_ value: Any?) -> Bool {
        switch value {
        case nil, is NSNull: return false
        case let list as [Any]: return !list.isEmpty
        case let dict as [String: Any]: return !dict.isEmpty
        default: return true
        }
    }

    static func bool(_ config: [String: Any], _ key: String, path: String) throws -> Bool? {
        guard let value = config[key], !(value is NSNull) else { return nil }
        guard let number = value as? NSNumber else {
            throw BertTokenizerError.invalidConfiguration(path: path, key: key, reason: "not a boolean")
        }
        return number.boolValue
    }

    static func readObject(_ url: URL) throws -> [String: Any] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw BertTokenizerError.unreadableFile(path: url.path, reason: "\(error)")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw BertTokenizerError.unreadableFile(path: url.path, reason: "invalid JSON: \(error)")
        }
        guard let dict = object as? [String: Any] else {
            throw BertTokenizerError.unreadableFile(path: url.path, reason: "not a JSON object")
        }
        return dict
    }

    /// `vocab.txt`: one token per line, the line number is the id.
    static func readVocabulary(_ url: URL) throws -> [String] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw BertTokenizerError.unreadableFile(path: url.path, reason: "\(error)")
        }
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        return lines.map { String(decoding: $0, as: UTF8.self) }
    }
}
