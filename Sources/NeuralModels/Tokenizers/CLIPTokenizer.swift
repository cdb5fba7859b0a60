import Foundation
import Synchronization

// Port of open_clip/tokenizer.py `SimpleTokenizer` (open_clip_torch 3.3.0, itself a copy of
// OpenAI CLIP's simple_tokenizer.py) with `clean="lower"` and no reduction mask, reading the
// Hugging Face CLIP files (vocab.json + merges.txt) instead of bpe_simple_vocab_16e6.txt.gz.

/// The byte-level BPE tokenizer of CLIP, producing exactly the ids of open_clip's
/// `SimpleTokenizer` (`open_clip.tokenize`, `open_clip.get_tokenizer("ViT-L-14")`).
///
/// Loaded from a Hugging Face CLIP checkpoint's `vocab.json` (token → id) and `merges.txt`
/// (`#version` line, then one merge `left right` per line, in rank order). The start and end
/// token ids are looked up in the vocabulary, never assumed.
///
/// Encoding a text:
/// 1. cleanup as open_clip's `_clean_lower`: `ftfy.fix_text` (see `CLIPTextCleaner` for the
///    exact subset: everything but mojibake repair), `html.unescape` twice, whitespace
///    collapsed, Python `str.lower()`;
/// 2. split with open_clip's pattern
///    `<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
///    (`regex` module, IGNORECASE) by a hand-written scanner over Unicode scalars; an exact
///    occurrence of open_clip's in-text special spellings becomes the start / end id;
/// 3. each piece's UTF-8 bytes through byte-level BPE with `</w>` on the last symbol;
/// 4. start id + ids + end id; longer than the context length: cut to it, end id forced last.
///
/// Words already seen are memoized in a cache shared by all copies of a tokenizer and guarded
/// by a mutex, so one tokenizer can be used from many tasks at once.
///
/// ```swift
/// let tokenizer = try CLIPTokenizer(directory: checkpointURL)
/// let row = tokenizer.encode("a photo of a cat")   // 77 ids, zero padded
/// ```
public struct CLIPTokenizer: Sendable {
    /// The number of ids in a padded row; open_clip's default is 77.
    public let contextLength: Int
    /// The id of the start-of-text token (`<|startoftext|>` in the Hugging Face vocabulary).
    public let startTokenID: Int32
    /// The id of the end-of-text token (`<|endoftext|>` in the Hugging Face vocabulary).
    public let endTokenID: Int32

    let model: CLIPBPEModel

    /// The number of entries in the vocabulary.
    public var vocabularySize: Int { model.vocabularySize }

    /// Loads the tokenizer from a Hugging Face CLIP checkpoint's vocabulary and merges files.
    ///
    /// - Parameters:
    ///   - vocabularyURL: `vocab.json`, a JSON object mapping each token to its id.
    ///   - mergesURL: `merges.txt`; an optional first line starting with `#version`, then one
    ///     merge per line, two tokens separated by a space, highest priority first. Every line
    ///     is used (a later duplicate of a merge takes the later rank, as Python's `dict` does).
    ///   - contextLength: the length of a padded row; at least 1.
    ///   - startToken: the vocabulary entry of the start-of-text token.
    ///   - endToken: the vocabulary entry of the end-of-text token.
    ///   - inlineSpecialTokens: spellings that, found in a text, become a single special token,
    ///     mapped to the vocabulary entry they stand for, tried in this order before any other
    ///     piece of the split pattern. The default is open_clip 3.x's: it names its special
    ///     tokens `<start_of_text>` / `<end_of_text>`, and its split pattern matches them in the
    ///     text (case-insensitively, as the whole pattern is). Spellings are matched with
    ///     ASCII case folding plus `ſ`/`s` and `K` (U+212A)/`k`, as `regex`'s IGNORECASE does;
    ///     as in open_clip, only the exact spelling becomes the special id, and a case variant
    ///     (after lower-casing only `ſ` can make one) is encoded as an ordinary word.
    /// - Throws: `TokenizerError` naming the file that is missing, unreadable or malformed, or
    ///   that lacks a required token.
    public init(
        vocabularyURL: URL,
        mergesURL: URL,
        contextLength: Int = 77,
        startToken: String = "<|startoftext|>",
        endToken: String = "<|endoftext|>",
        inlineSpecialTokens: KeyValuePairs<String, String> = [
            "<start_of_text>": "<|startoftext|>",
            "<end_of_text>": "<|endoftext|>",
        ]
    ) throws(TokenizerError) {
        precondition(contextLength >= 1, "contextLength must be at least 1")
        let vocabulary = try Self.readVocabulary(vocabularyURL)
        func requireID(_ token: String) throws(TokenizerError) -> Int32 {
            guard let id = vocabulary[token] else {
                throw .invalidVocabulary(vocabularyURL, reason: "missing token \"\(token)\"")
            }
            return id
        }
        startTokenID = try requireID(startToken)
        endTokenID = try requireID(endToken)
        var specials: [(pattern: [Unicode.Scalar], id: Int32)] = []
        for (spelling, token) in inlineSpecialTokens where !spelling.isEmpty {
            specials.append((Array(spelling.unicodeScalars), try requireID(token)))
        }
        let merges = try Self.readMerges(mergesURL, vocabulary: vocabulary)
        model = try CLIPBPEModel(vocabulary: vocabulary, vocabularyURL: vocabularyURL, merges: merges,
                                 inlineSpecials: specials)
        self.contextLength = contextLength
    }

    /// Loads `vocab.json` and `merges.txt` from a checkpoint directory.
    ///
    /// - Parameters:
    ///   - directory: the folder holding the Hugging Face tokenizer files.
    ///   - contextLength: the length of a padded row; at least 1.
    /// - Throws: `TokenizerError` naming the file that is missing or malformed.
    public init(directory: URL, contextLength: Int = 77) throws(TokenizerError) {
        try self.init(vocabularyURL: directory.appendingPathComponent("vocab.json"),
                      mergesURL: directory.appendingPathComponent("merges.txt"),
                      contextLength: contextLength)
    }

    private init(copying other: CLIPTokenizer, contextLength: Int) {
        self.contextLength = contextLength
        self.startTokenID = other.startTokenID
        self.endTokenID = other.endTokenID
        self.model = other.model
    }

    /// A tokenizer sharing this one's tables and cache with a different context length.
    ///
    /// - Parameter contextLength: the length of a padded row; at least 1.
    public func withContextLength(_ contextLength: Int) -> CLIPTokenizer {
        precondition(contextLength >= 1, "contextLength must be at least 1")
        return CLIPTokenizer(copying: self, contextLength: contextLength)
    }

    // MARK: Encoding

    /// The ids of `text` without start / end tokens and without truncation (open_clip's
    /// `SimpleTokenizer.encode`).
    ///
    /// - Parameter text: any text; it is cleaned first.
    /// - Returns: the BPE ids in order.
    public func encodeWithoutSpecialTokens(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        model.appendIDs(of: CLIPTextCleaner.clean(text), to: &ids)
        return ids
    }

    /// The ids of `text` framed by the start and end tokens, unpadded.
    ///
    /// - Parameters:
    ///   - text: any text; it is cleaned first.
    ///   - truncating: when true (the default) and the framed ids are longer than
    ///     `contextLength`, they are cut to `contextLength` and the last one replaced by the end
    ///     token, as open_clip does; when false the full sequence is returned.
    /// - Returns: `[start, ids..., end]`, at most `contextLength` long when truncating.
    public func encodeUnpadded(_ text: String, truncating: Bool = true) -> [Int32] {
        var ids: [Int32] = [startTokenID]
        model.appendIDs(of: CLIPTextCleaner.clean(text), to: &ids)
        ids.append(endTokenID)
        if truncating && ids.count > contextLength {
            ids.removeSubrange(contextLength...)
            ids[contextLength - 1] = endTokenID
        }
        return ids
    }

    /// The unpadded, truncated ids of every text (see `encodeUnpadded(_:truncating:)`).
    ///
    /// - Parameter texts: the texts, in order.
    /// - Returns: one id array per text.
    public func encodeUnpadded(_ texts: [String]) -> [[Int32]] {
        texts.map { encodeUnpadded($0) }
    }

    /// One row of `open_clip.tokenize`: the truncated ids zero-padded to `contextLength`.
    ///
    /// - Parameter text: any text; it is cleaned first.
    /// - Returns: exactly `contextLength` ids.
    public func encode(_ text: String) -> [Int32] {
        var row = encodeUnpadded(text)
        row.append(contentsOf: repeatElement(0, count: contextLength - row.count))
        return row
    }

    /// `open_clip.tokenize(texts)`: one zero-padded row of `contextLength` ids per text.
    ///
    /// - Parameter texts: the texts, in order.
    /// - Returns: `texts.count` rows of `contextLength` ids.
    public func encode(_ texts: [String]) -> [[Int32]] {
        texts.map { encode($0) }
    }

    /// `open_clip.tokenize(texts)` as one row-major buffer `[texts.count, contextLength]`, ready
    /// to become a tensor.
    ///
    /// - Parameter texts: the texts, in order.
    /// - Returns: `texts.count * contextLength` ids, zero padded per row.
    public func encodeFlattened(_ texts: [String]) -> [Int32] {
        var out = [Int32](repeating: 0, count: texts.count * contextLength)
        for (row, text) in texts.enumerated() {
            let ids = encodeUnpadded(text)
            let base = row * contextLength
            for (column, id) in ids.enumerated() { out[base + column] = id }
        }
        return out
    }

    /// The text exactly as open_clip cleans it before splitting (`_clean_lower`).
    ///
    /// - Parameter text: any text.
    /// - Returns: the cleaned, lower-cased text.
    public func clean(_ text: String) -> String {
        var out = ""
        out.unicodeScalars.append(contentsOf: CLIPTextCleaner.clean(text))
        return out
    }

    /// open_clip's `SimpleTokenizer.decode`: the tokens' bytes as UTF-8 (invalid sequences
    /// replaced by U+FFFD), with every `</w>` turned into a space. Special tokens appear with
    /// their vocabulary spelling; unknown ids are skipped.
    ///
    /// - Parameter ids: token ids, for example one unpadded row.
    /// - Returns: the decoded text.
    public func decode(_ ids: [Int32]) -> String {
        String(decoding: model.bytes(of: ids), as: UTF8.self).replacingOccurrences(of: "</w>", with: " ")
    }

    /// The id of a vocabulary entry, or nil if the vocabulary lacks it.
    ///
    /// - Parameter token: the entry exactly as `vocab.json` spells it (byte-level characters,
    ///   `</w>` suffix for word ends).
    public func id(forToken token: String) -> Int32? { model.tokenToID[token] }

    // MARK: Loading

    static func readText(_ url: URL) throws(TokenizerError) -> String {
        guard FileManager.default.fileExists(atPath: url.path) else { throw .missingFile(url) }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw .unreadableFile(url, reason: String(describing: error))
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw .unreadableFile(url, reason: "not valid UTF-8")
        }
        return text
    }

    static func readVocabulary(_ url: URL) throws(TokenizerError) -> [String: Int32] {
        guard FileManager.default.fileExists(atPath: url.path) else { throw .missingFile(url) }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw .unreadableFile(url, reason: String(describing: error))
        }
        let decoded: [String: Int]
        do {
            decoded = try JSONDecoder().decode([String: Int].self, from: data)
        } catch {
            throw .invalidVocabulary(url, reason: "not a JSON object of token → integer id (\(error))")
        }
        guard !decoded.isEmpty else { throw .invalidVocabulary(url, reason: "empty vocabulary") }
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(decoded.count)
        for (token, id) in decoded {
            guard id >= 0, id < Int(Int32.max) else {
                throw .invalidVocabulary(url, reason: "id \(id) of \"\(token)\" is out of range")
            }
            vocabulary[token] = Int32(id)
        }
        return vocabulary
    }

    /// Parsed merges: (left id, right id, merged id) in rank order.
    static func readMerges(_ url: URL, vocabulary: [String: Int32]) throws(TokenizerError) -> [(Int32, Int32, Int32)] {
        let text = try readText(url)
        var merges: [(Int32, Int32, Int32)] = []
        merges.reserveCapacity(50_000)
        // Split on scalars: "\r\n" is one Character, and merge tokens must not be compared
        // as Characters.
        let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if parts.isEmpty { continue }
            if index == 0, parts[0].starts(with: "#version".unicodeScalars) { continue }
            guard parts.count == 2 else {
                throw .invalidMerges(url, line: index + 1, reason: "expected two tokens, found \(parts.count)")
            }
            let left = String(String.UnicodeScalarView(parts[0]))
            let right = String(String.UnicodeScalarView(parts[1]))
            guard let leftID = vocabulary[left], let rightID = vocabulary[right] else {
                throw .invalidMerges(url, line: index + 1, reason: "token not in the vocabulary")
            }
            guard let mergedID = vocabulary[left + right] else {
                throw .invalidMerges(url, line: index + 1, reason: "merged token \"\(left + right)\" not in the vocabulary")
            }
            merges.append((leftID, rightID, mergedID))
        }
        guard !merges.isEmpty else { throw .invalidMerges(url, line: 1, reason: "no merges") }
        return merges
    }
}

// MARK: - BPE model

/// The immutable BPE tables plus the shared word cache.
final class CLIPBPEModel: Sendable {
    /// Id of each byte's character (`bytes_to_unicode`) as a word-inner symbol.
    let byteIDs: [Int32]
    /// Id of each byte's character followed by `</w>` (a word's last symbol).
    let byteEndIDs: [Int32]
    /// `(left << 32) | right` -> `(rank << 32) | merged id`.
    let merges: [UInt64: UInt64]
    /// In-text special spellings, in the order the split pattern tries them.
    let inlineSpecials: [(pattern: [Unicode.Scalar], id: Int32)]
    let tokenToID: [String: Int32]
    /// Vocabulary entries by id ("" for ids the vocabulary skips).
    let idToToken: [String]
    let vocabularySize: Int
    /// Byte of each byte-level character.
    let byteDecoder: [UInt32: UInt8]
    /// Word bytes -> ids; cleared when it reaches `cacheLimit` entries.
    let cache = Mutex<[[UInt8]: [Int32]]>([:])
    static let cacheLimit = 1 << 18

    init(vocabulary: [String: Int32], vocabularyURL: URL, merges: [(Int32, Int32, Int32)],
         inlineSpecials: [(pattern: [Unicode.Scalar], id: Int32)]) throws(TokenizerError) {
        let byteCharacters = Self.bytesToUnicode()
        var byteIDs = [Int32](repeating: 0, count: 256)
        var byteEndIDs = [Int32](repeating: 0, count: 256)
        var byteDecoder: [UInt32: UInt8] = [:]
        for byte in 0..<256 {
            let character = String(Character(byteCharacters[byte]))
            guard let id = vocabulary[character], let endID = vocabulary[character + "</w>"] else {
                throw .invalidVocabulary(vocabularyURL, reason: "missing byte-level token for byte \(byte)")
            }
            byteIDs[byte] = id
            byteEndIDs[byte] = endID
            byteDecoder[byteCharacters[byte].value] = UInt8(byte)
        }
        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(merges.count)
        for (rank, merge) in merges.enumerated() {
            let key = UInt64(UInt32(merge.0)) << 32 | UInt64(UInt32(merge.1))
            table[key] = UInt64(rank) << 32 | UInt64(UInt32(merge.2))
        }
        let maxID = Int(vocabulary.values.max() ?? 0)
        var idToToken = [String](repeating: "", count: maxID + 1)
        for (token, id) in vocabulary { idToToken[Int(id)] = token }
        self.byteIDs = byteIDs
        self.byteEndIDs = byteEndIDs
        self.byteDecoder = byteDecoder
        self.merges = table
        self.inlineSpecials = inlineSpecials
        self.tokenToID = vocabulary
        self.idToToken = idToToken
        self.vocabularySize = vocabulary.count
    }

    /// GPT-2 / CLIP `bytes_to_unicode`: printable Latin-1 bytes stand for themselves, the other
    /// 68 bytes for U+0100 onwards, in byte order.
    static func bytesToUnicode() -> [Unicode.Scalar] {
        var result = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 0x100
        for byte in 0..<256 {
            switch byte {
            case 0x21...0x7E, 0xA1...0xAC, 0xAE...0xFF:
                result[byte] = Unicode.Scalar(UInt32(byte))!
            default:
                result[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return result
    }

    /// Splits cleaned text with open_clip's pattern and appends the BPE ids of every piece.
    func appendIDs(of text: [Unicode.Scalar], to out: inout [Int32]) {
        var word: [UInt8] = []
        word.reserveCapacity(64)
        var index = 0
        let count = text.count
        let bmpClasses = CLIPPreTokenizer.bmpClasses
        @inline(__always) func classify(_ scalar: Unicode.Scalar) -> CLIPPreTokenizer.ScalarClass {
            scalar.value < 0x10000 ? bmpClasses[Int(scalar.value)] : CLIPPreTokenizer.computeClass(scalar)
        }
        scanning: while index < count {
            let scalar = text[index]
            var end = index
            if let special = inlineSpecials.first(where: { CLIPPreTokenizer.matches($0.pattern, in: text, at: index) }) {
                end = index + special.pattern.count
                // open_clip maps a piece to the special id through its BPE cache, which holds the
                // exact spelling only; a case variant the pattern also matches (`<ſtart_of_text>`)
                // is BPE-encoded as one word.
                if text[index..<end].elementsEqual(special.pattern) {
                    out.append(special.id)
                    index = end
                    continue scanning
                }
            } else if scalar == "'", let length = CLIPPreTokenizer.contractionLength(in: text, at: index) {
                end = index + length
            } else {
                switch classify(scalar) {
                case .letter:
                    end = index + 1
                    while end < count, classify(text[end]) == .letter { end += 1 }
                case .number:
                    end = index + 1
                case .other:
                    end = index + 1
                    while end < count, classify(text[end]) == .other { end += 1 }
                case .space, .unmatched:
                    index += 1
                    continue scanning
                }
            }
            word.removeAll(keepingCapacity: true)
            for position in index..<end { Self.appendUTF8(text[position], to: &word) }
            appendWordIDs(word, to: &out)
            index = end
        }
    }

    @inline(__always)
    static func appendUTF8(_ scalar: Unicode.Scalar, to bytes: inout [UInt8]) {
        let value = scalar.value
        switch value {
        case 0..<0x80:
            bytes.append(UInt8(value))
        case 0x80..<0x800:
            bytes.append(UInt8(0xC0 | (value >> 6)))
            bytes.append(UInt8(0x80 | (value & 0x3F)))
        case 0x800..<0x10000:
            bytes.append(UInt8(0xE0 | (value >> 12)))
            bytes.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
            bytes.append(UInt8(0x80 | (value & 0x3F)))
        default:
            bytes.append(UInt8(0xF0 | (value >> 18)))
            bytes.append(UInt8(0x80 | ((value >> 12) & 0x3F)))
            bytes.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
            bytes.append(UInt8(0x80 | (value & 0x3F)))
        }
    }

    /// The ids of one pre-token (its UTF-8 bytes), through the cache.
    func appendWordIDs(_ word: [UInt8], to out: inout [Int32]) {
        if let cached = cache.withLock({ $0[word] }) {
            out.append(contentsOf: cached)
            return
        }
        let ids = bpe(word)
        cache.withLock { cache in
            if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[word] = ids
        }
        out.append(contentsOf: ids)
    }

    /// open_clip's `SimpleTokenizer.bpe` on ids: repeatedly merge every occurrence (left to
    /// right) of the adjacent pair with the lowest merge rank until no pair has a rank.
    func bpe(_ word: [UInt8]) -> [Int32] {
        var symbols = word.map { byteIDs[Int($0)] }
        symbols[symbols.count - 1] = byteEndIDs[Int(word[word.count - 1])]
        var merged: [Int32] = []
        merged.reserveCapacity(symbols.count)
        while symbols.count > 1 {
            var bestRank = UInt64.max
            var bestValue: UInt64 = 0
            var bestIndex = -1
            for index in 0..<(symbols.count - 1) {
                let key = UInt64(UInt32(symbols[index])) << 32 | UInt64(UInt32(symbols[index + 1]))
                if let value = merges[key], value >> 32 < bestRank {
                    bestRank = value >> 32
                    bestValue = value
                    bestIndex = index
                }
            }
            if bestIndex < 0 { break }
            let first = symbols[bestIndex]
            let second = symbols[bestIndex + 1]
            let replacement = Int32(truncatingIfNeeded: bestValue & 0xFFFF_FFFF)
            merged.removeAll(keepingCapacity: true)
            var index = bestIndex  // no occurrence of the best pair lies before it
            merged.append(contentsOf: symbols[0..<bestIndex])
            while index < symbols.count {
                if index + 1 < symbols.count, symbols[index] == first, symbols[index + 1] == second {
                    merged.append(replacement)
                    index += 2
                } else {
                    merged.append(symbols[index])
                    index += 1
                }
            }
            swap(&symbols, &merged)
        }
        return symbols
    }

    /// The bytes the ids' vocabulary entries stand for.
    func bytes(of ids: [Int32]) -> [UInt8] {
        var bytes: [UInt8] = []
        for id in ids where id >= 0 && Int(id) < idToToken.count {
            for scalar in idToToken[Int(id)].unicodeScalars {
                if let byte = byteDecoder[scalar.value] {
                    bytes.append(byte)
                } else {
                    Self.appendUTF8(scalar, to: &bytes)
                }
            }
        }
        return bytes
    }
}

// MARK: - Pre-tokenizer

/// The pieces of open_clip's split pattern, over Unicode scalars.
///
/// Classes follow the `regex` module (2026.11.19) with IGNORECASE: `[\p{L}]` is general
/// category L*, `[\p{N}]` is N*, `\s` is the White_Space property, and
/// `[^\s\p{L}\p{N}]` everything else except U+0345 (COMBINING GREEK YPOGEGRAMMENI), which
/// case-insensitive matching keeps out of both classes so that no piece contains it. Scalars the
/// Swift runtime has unassigned use the table of letters and numbers newer than Unicode 14.
enum CLIPPreTokenizer {
    enum ScalarClass: UInt8 {
        case unmatched = 0, letter = 1, number = 2, other = 3, space = 4
    }

    /// Classes of the Basic Multilingual Plane, computed once.
    static let bmpClasses: [ScalarClass] = (0..<0x10000).map { value -> ScalarClass in
        guard let scalar = Unicode.Scalar(UInt32(value)) else { return .other }
        return computeClass(scalar)
    }

    @inline(__always)
    static func classify(_ scalar: Unicode.Scalar) -> ScalarClass {
        scalar.value < 0x10000 ? bmpClasses[Int(scalar.value)] : computeClass(scalar)
    }

    static func computeClass(_ scalar: Unicode.Scalar) -> ScalarClass {
        if scalar.value == 0x345 { return .unmatched }
        let properties = scalar.properties
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        case .unassigned:
            return newerClass(scalar.value) ?? .other
        default:
            return properties.isWhitespace ? .space : .other
        }
    }

    /// Letter / number class from `CLIPTokenizerTables.newerLettersAndNumbers`.
    static func newerClass(_ value: UInt32) -> ScalarClass? {
        let table = CLIPTokenizerTables.newerLettersAndNumbers
        var low = 0
        var high = table.count
        while low < high {
            let middle = (low + high) / 2
            if table[middle].1 < value { low = middle + 1 } else { high = middle }
        }
        guard low < table.count, table[low].0 <= value else { return nil }
        return table[low].2 == 1 ? .letter : .number
    }

    /// Simple case folding for the scalars an ASCII pattern can meet under IGNORECASE.
    @inline(__always)
    static func folded(_ value: UInt32) -> UInt32 {
        switch value {
        case 0x41...0x5A: return value | 0x20
        case 0x17F: return 0x73  // ſ -> s
        case 0x212A: return 0x6B  // Kelvin sign -> k
        default: return value
        }
    }

    /// Whether `pattern` occurs (case-insensitively) in `text` at `index`.
    @inline(__always)
    static func matches(_ pattern: [Unicode.Scalar], in text: [Unicode.Scalar], at index: Int) -> Bool {
        guard index + pattern.count <= text.count else { return false }
        for offset in 0..<pattern.count where folded(pattern[offset].value) != folded(text[index + offset].value) {
            return false
        }
        return true
    }

    static let contractions: [[Unicode.Scalar]] = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"].map {
        Array($0.unicodeScalars)
    }

    /// Length of the contraction (`'s|'t|'re|'ve|'m|'ll|'d`) starting at `index`, if any.
    @inline(__always)
    static func contractionLength(in text: [Unicode.Scalar], at index: Int) -> Int? {
        for contraction in contractions where matches(contraction, in: text, at: index) {
            return contraction.count
        }
        return nil
    }
}
