import Foundation
import Synchronization

// The BPE half of open_clip/tokenizer.py `SimpleTokenizer` (`bpe`, `encode`, `decode`) for
// `CLIPTokenizer`, over vocabulary ids instead of strings.

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
    /// Vocabulary entries by id (a dictionary: ids come from the file and may be
    /// sparse or huge, so they never size an array).
    let idToToken: [Int32: String]
    let vocabularySize: Int
    /// Byte of each byte-level character.
    let byteDecoder: [UInt32: UInt8]
    /// Word bytes -> ids; cleared when it reaches `cacheLimit` entries.
    let cache = Mutex<[[UInt8]: [Int32]]>([:])
    static let cacheLimit = 1 << 18

    init(vocabulary: [String: Int32], vocabularyURL: URL, merges: [(Int32, Int32, Int32)],
         inlineSpecials: [(pattern: [Unicode.Scalar], id: Int32)]) throws(CLIPTokenizerError) {
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
        var idToToken: [Int32: String] = [:]
        idToToken.reserveCapacity(vocabulary.count)
        for (token, id) in vocabulary { idToToken[id] = token }
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
        for id in ids {
            for scalar in (idToToken[id] ?? "").unicodeScalars {
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
