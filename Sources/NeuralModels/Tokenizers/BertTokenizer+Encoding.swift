// Encoding for `BertTokenizer`: tokenizers' added-token matching (`AddedVocabulary`), the
// `BertPreTokenizer` split and the `WordPiece` model over a scalar trie of the vocabulary.

extension BertTokenizer {
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

    // MARK: Vocabulary trie

    /// The WordPiece vocabulary as a scalar trie: exact lookups without `String` canonical
    /// equivalence, and longest-prefix matches for the greedy WordPiece loop.
    struct VocabularyTrie: Sendable {
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
}
