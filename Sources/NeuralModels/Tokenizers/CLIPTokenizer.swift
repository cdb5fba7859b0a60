import Foundation
import NeuralCore

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
    /// - Throws: `CLIPTokenizerError` naming the file that is missing, unreadable or malformed, or
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
    ) throws(CLIPTokenizerError) {
        precondition(contextLength >= 1, "contextLength must be at least 1")
        let vocabulary = try Self.readVocabulary(vocabularyURL)
        func requireID(_ token: String) throws(CLIPTokenizerError) -> Int32 {
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
    /// - Throws: `CLIPTokenizerError` naming the file that is missing or malformed.
    public init(directory: URL, contextLength: Int = 77) throws(CLIPTokenizerError) {
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

    /// The bytes of a tokenizer file (a regular file of at most ``maximumTextFileBytes``).
    static func readFile(_ url: URL) throws(CLIPTokenizerError) -> Data {
        guard FileManager.default.fileExists(atPath: url.path) else { throw .missingFile(url) }
        do {
            return try readRegularFile(url.path, limit: maximumTextFileBytes)
        } catch {
            throw .unreadableFile(url, reason: (error as? FileError).map { $0.reason ?? String(cString: strerror($0.code)) } ?? "\(error)")
        }
    }

    static func readText(_ url: URL) throws(CLIPTokenizerError) -> String {
        let data = try readFile(url)
        guard let text = String(data: data, encoding: .utf8) else {
            throw .unreadableFile(url, reason: "not valid UTF-8")
        }
        return text
    }

    static func readVocabulary(_ url: URL) throws(CLIPTokenizerError) -> [String: Int32] {
        let data = try readFile(url)
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
    static func readMerges(_ url: URL, vocabulary: [String: Int32]) throws(CLIPTokenizerError) -> [(Int32, Int32, Int32)] {
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

// MARK: - Errors

/// An error raised while loading a ``CLIPTokenizer``'s files (`vocab.json`, `merges.txt`).
///
/// Every case names the file it is about, so a message points straight at the checkpoint file
/// that is missing or damaged.
public enum CLIPTokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file does not exist.
    case missingFile(URL)
    /// The file exists but could not be read, or is not valid UTF-8.
    case unreadableFile(URL, reason: String)
    /// The vocabulary file is not in the expected format, or lacks a required token.
    case invalidVocabulary(URL, reason: String)
    /// A line of the merges file is malformed or names a token the vocabulary lacks.
    /// `line` is 1-based.
    case invalidMerges(URL, line: Int, reason: String)

    /// A one-line human-readable description that names the file.
    public var description: String {
        switch self {
        case .missingFile(let url):
            return "tokenizer file not found: \(url.path)"
        case .unreadableFile(let url, let reason):
            return "cannot read tokenizer file \(url.path): \(reason)"
        case .invalidVocabulary(let url, let reason):
            return "invalid vocabulary file \(url.path): \(reason)"
        case .invalidMerges(let url, let line, let reason):
            return "invalid merges file \(url.path), line \(line): \(reason)"
        }
    }
}

/// The former name of ``CLIPTokenizerError``, from when it was the only tokenizer error type.
@available(*, deprecated, renamed: "CLIPTokenizerError")
public typealias TokenizerError = CLIPTokenizerError

extension CLIPTokenizerError: LocalizedError {
    /// The same text as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}
