// Decoding for `BertTokenizer`: tokenizers' WordPiece decoder and transformers'
// `clean_up_tokenization`.

extension BertTokenizer {
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
