import Foundation

// Port of the text cleaning in open_clip/tokenizer.py (`SimpleTokenizer(clean="lower")`):
//
//     _clean_lower(x)   = whitespace_clean(basic_clean(x)).lower()
//     basic_clean(t)    = html.unescape(html.unescape(ftfy.fix_text(t))).strip()
//     whitespace_clean  = " ".join(t.split()).strip()
//
// with the parts of ftfy 6.3.1 `fix_text` (default `TextFixerConfig`) that real text needs, and
// Python 3.11's `html.unescape`, `str.strip/split` (str.isspace) and `str.lower` (full case
// mapping, Final_Sigma). All work is on Unicode scalars, as Python strings are sequences of code
// points; nothing here compares `String`s (Swift's `String ==` is canonical equivalence).
//
// This file: the pipeline and ftfy's fixers. HTML unescaping (ftfy's and Python's):
// CLIPTextCleaner+HTML.swift; Python's `str` methods: CLIPTextCleaner+Python.swift.

/// open_clip's text cleanup for CLIP: a subset of `ftfy.fix_text`, HTML unescaping, whitespace
/// collapsing and Python's lower-casing.
///
/// Ported from ftfy 6.3.1 `fix_text` with its default configuration, applied in ftfy's order and
/// repeated until nothing changes, on segments that end at each `"\n"` (at most 1,000,000
/// scalars each):
/// - `unescape_html` ("auto"): ftfy's own entity decoder (`&#?[0-9A-Za-z]{1,24};`, HTML5 names
///   that end in `;` plus ftfy's all-caps spellings such as `&EACUTE;`); switched off for a
///   segment that contains `<` and for every segment after it, as ftfy does.
/// - `fix_c1_controls`: U+0080–U+009F read as Windows-1252 (sloppy: unassigned bytes stay).
/// - `fix_latin_ligatures`, `fix_character_width` (U+3000 and the NFKC form of U+FF01–U+FFEF),
///   `uncurl_quotes`, `fix_line_breaks`, `remove_terminal_escapes`, `remove_control_chars`,
///   and NFC normalization.
///
/// Not ported:
/// - `fix_encoding` (mojibake detection and repair: `is_bad` heuristics, re-encoding through
///   latin-1 / sloppy-windows-125x / iso-8859-2 / macroman / cp437, `restore_byte_a0`,
///   `replace_lossy_sequences`, `decode_inconsistent_utf8`). Text such as `"cafÃ©"` therefore
///   keeps its mojibake where open_clip would turn it into `"café"`. None of the reference's
///   111,867 labels (nor its negative list) is changed by this step.
/// - `fix_surrogates`: a Swift `String` cannot hold unpaired UTF-16 surrogates, so there is
///   nothing to repair.
///
/// Unicode versions: Python 3.11 uses Unicode 14.0 for `str.lower()` and `\d`; scalars the
/// Swift runtime knows from a later Unicode version are left as Python 3.11 leaves them
/// (not lower-cased, not digits).
enum CLIPTextCleaner {
    /// `_clean_lower(text)` as scalars.
    static func clean(_ text: String) -> [Unicode.Scalar] {
        if let ascii = cleanPlainASCII(text) { return ascii }
        var scalars = Array(text.unicodeScalars)
        scalars = fixText(scalars)
        scalars = htmlUnescape(htmlUnescape(scalars))
        scalars = collapseWhitespace(scalars)
        return pythonLower(scalars)
    }

    // MARK: Fast path

    /// Printable ASCII plus tab, line feed, form feed and carriage return, without `&`: no ftfy
    /// fixer and no HTML unescaping can change such text, so cleaning is whitespace collapsing and
    /// ASCII lower-casing. Returns nil for any other text.
    static func cleanPlainASCII(_ text: String) -> [Unicode.Scalar]? {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.utf8.count)
        var pendingSpace = false
        for byte in text.utf8 {
            switch byte {
            case 0x09, 0x0A, 0x0C, 0x0D, 0x20:
                if !out.isEmpty { pendingSpace = true }
            case 0x26:
                return nil
            case 0x21...0x7E:
                if pendingSpace {
                    out.append(" ")
                    pendingSpace = false
                }
                let lowered = (0x41...0x5A).contains(byte) ? byte | 0x20 : byte
                out.append(Unicode.Scalar(lowered))
            default:
                return nil
            }
        }
        return out
    }

    // MARK: ftfy.fix_text

    /// ftfy's `max_decode_length`.
    static let maxSegmentLength = 1_000_000

    /// `ftfy.fix_text(text)` with the default configuration minus `fix_encoding`.
    static func fixText(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var unescapeHTML = true  // "auto" until a segment contains "<"
        var position = 0
        while position < text.count {
            var end = text[position...].firstIndex(of: "\n").map { $0 + 1 } ?? text.count
            if end - position > maxSegmentLength { end = position + maxSegmentLength }
            let segment = Array(text[position..<end])
            if unescapeHTML && segment.contains("<") { unescapeHTML = false }
            out.append(contentsOf: fixSegment(segment, unescapeHTML: unescapeHTML))
            position = end
        }
        return out
    }

    /// ftfy's `fix_and_explain` loop for one segment: apply the fixers until a fixed point.
    static func fixSegment(_ segment: [Unicode.Scalar], unescapeHTML: Bool) -> [Unicode.Scalar] {
        var text = segment
        while true {
            let original = text
            if unescapeHTML { text = ftfyUnescapeHTML(text) }
            // fix_encoding: not ported (see the type's documentation).
            text = applyCharacterMaps(text)
            text = fixLineBreaks(text)
            // fix_surrogates: nothing to do for Swift strings.
            text = removeTerminalEscapes(text)
            text = removeControlCharacters(text)
            text = nfc(text)
            if text == original { return text }
        }
    }

    /// `fix_c1_controls`, `fix_latin_ligatures`, `fix_character_width` and `uncurl_quotes`, which
    /// are per-character translations applied one after the other.
    static func applyCharacterMaps(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        for scalar in text {
            if scalar.value < 0x80 {
                out.append(scalar)
                continue
            }
            let c1Fixed = (0x80...0x9F).contains(scalar.value) ? windows1252C1(scalar.value) : scalar
            let unligated = latinLigatures[c1Fixed.value] ?? [c1Fixed]
            for piece in unligated {
                let widened = widthMap[piece.value] ?? [piece]
                for character in widened {
                    out.append(uncurled(character))
                }
            }
        }
        return out
    }

    /// `uncurl_quotes`: U+02BC and U+2018–U+201B become `'`, U+201C–U+201F become `"`.
    @inline(__always)
    static func uncurled(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        switch scalar.value {
        case 0x02BC, 0x2018...0x201B: return "'"
        case 0x201C...0x201F: return "\""
        default: return scalar
        }
    }

    /// Windows-1252 reading of a C1 control (0x80–0x9F); the five bytes Windows-1252 leaves
    /// unassigned keep their Latin-1 meaning. Also HTML5's table for numeric references to them.
    static func windows1252C1(_ value: UInt32) -> Unicode.Scalar {
        let table: [UInt32] = [
            0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
            0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
            0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
            0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
        ]
        return Unicode.Scalar(table[Int(value - 0x80)])!
    }

    /// `fix_latin_ligatures`: Latin typographic ligatures and the legacy digraph code points.
    static let latinLigatures: [UInt32: [Unicode.Scalar]] = {
        let pairs: [(UInt32, String)] = [
            (0x0132, "IJ"), (0x0133, "ij"), (0x0149, "\u{02BC}n"),
            (0x01F1, "DZ"), (0x01F2, "Dz"), (0x01F3, "dz"),
            (0x01C4, "D\u{017D}"), (0x01C5, "D\u{017E}"), (0x01C6, "d\u{017E}"),
            (0x01C7, "LJ"), (0x01C8, "Lj"), (0x01C9, "lj"),
            (0x01CA, "NJ"), (0x01CB, "Nj"), (0x01CC, "nj"),
            (0xFB00, "ff"), (0xFB01, "fi"), (0xFB02, "fl"), (0xFB03, "ffi"), (0xFB04, "ffl"),
            (0xFB05, "\u{017F}t"), (0xFB06, "st"),
        ]
        var map: [UInt32: [Unicode.Scalar]] = [:]
        for (code, replacement) in pairs { map[code] = Array(replacement.unicodeScalars) }
        return map
    }()

    /// `fix_character_width`: U+3000 becomes a space; U+FF01–U+FFEF become their NFKC form.
    static let widthMap: [UInt32: [Unicode.Scalar]] = {
        var map: [UInt32: [Unicode.Scalar]] = [0x3000: [" "]]
        for value in UInt32(0xFF01)..<0xFFF0 {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let folded = Array(String(Character(scalar)).precomposedStringWithCompatibilityMapping.unicodeScalars)
            if folded != [scalar] { map[value] = folded }
        }
        return map
    }()

    /// `fix_line_breaks`: CRLF, CR, U+2028, U+2029 and U+0085 become `"\n"`.
    static func fixLineBreaks(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains(where: { $0 == "\r" || $0.value == 0x2028 || $0.value == 0x2029 || $0.value == 0x85 })
        else { return text }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var index = 0
        while index < text.count {
            let scalar = text[index]
            switch scalar.value {
            case 0x0D:
                out.append("\n")
                if index + 1 < text.count && text[index + 1] == "\n" { index += 1 }
            case 0x2028, 0x2029, 0x85:
                out.append("\n")
            default:
                out.append(scalar)
            }
            index += 1
        }
        return out
    }

    /// `remove_terminal_escapes`: removes `ESC [ (\d|;)* [A-Za-z]` (`\d`: Unicode decimal digits).
    static func removeTerminalEscapes(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains("\u{1B}") else { return text }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var index = 0
        while index < text.count {
            if text[index] == "\u{1B}", index + 1 < text.count, text[index + 1] == "[" {
                var end = index + 2
                while end < text.count, text[end] == ";" || isPythonDecimalDigit(text[end]) { end += 1 }
                if end < text.count, text[end].isASCII, text[end].properties.isAlphabetic {
                    index = end + 1
                    continue
                }
            }
            out.append(text[index])
            index += 1
        }
        return out
    }

    /// `remove_control_chars`: U+0000–U+0008, U+000B, U+000E–U+001F, U+007F, U+206A–U+206F,
    /// U+FEFF and U+FFF9–U+FFFC.
    static func removeControlCharacters(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains(where: isRemovedControl) else { return text }
        return text.filter { !isRemovedControl($0) }
    }

    @inline(__always)
    static func isRemovedControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x206A...0x206F, 0xFEFF, 0xFFF9...0xFFFC: return true
        default: return false
        }
    }

    /// NFC normalization, as Python 3.11's `unicodedata.normalize("NFC", …)` (Unicode 14).
    ///
    /// Foundation does the work, in pieces, working around two defects of swift-foundation's
    /// `precomposedStringWithCanonicalMapping` on Linux (Swift 6.3):
    /// - it composes a supplementary-plane starter through its low 16 bits (U+10041 U+0301
    ///   becomes U+00C1, U+11F50 U+0301 becomes U+1F54). The text is therefore cut around every
    ///   supplementary starter that takes part in no Unicode 14 canonical decomposition, and
    ///   around every scalar Unicode 14 does not have (Python 3.11 treats those as starters that
    ///   neither decompose nor compose). Such scalars are normalization boundaries on both sides,
    ///   so cutting there changes nothing else, and it leaves compositions and combining classes
    ///   added after Unicode 14 alone, as Python 3.11 does;
    /// - it misses a composition whose first part is itself a precomposed character followed by
    ///   a starter (U+0CCA U+0CD5 stays instead of becoming U+0CCB). Each piece is therefore
    ///   decomposed first: NFC(NFD(x)) is NFC(x) by definition.
    ///
    /// Pieces whose scalars are all below U+0300 are already in NFC and skip Foundation.
    static func nfc(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains(where: { $0.value >= 0x300 }) else { return text }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var start = 0
        for index in text.indices where text[index].value >= 0x300 && isNormalizationBoundary(text[index]) {
            appendFoundationNFC(text[start..<index], to: &out)
            out.append(text[index])
            start = index + 1
        }
        appendFoundationNFC(text[start...], to: &out)
        return out
    }

    /// A scalar Unicode 14 does not have, or a supplementary starter outside
    /// `CLIPTokenizerTables.composingSupplementaryScalars`.
    static func isNormalizationBoundary(_ scalar: Unicode.Scalar) -> Bool {
        let properties = scalar.properties
        guard isKnownToReference(properties) else { return true }
        guard scalar.value >= 0x10000 else { return false }
        let table = CLIPTokenizerTables.composingSupplementaryScalars
        var low = 0
        var high = table.count
        while low < high {
            let middle = (low + high) / 2
            if table[middle].1 < scalar.value { low = middle + 1 } else { high = middle }
        }
        if low < table.count, table[low].0 <= scalar.value { return false }
        return properties.canonicalCombiningClass == .notReordered
    }

    static func appendFoundationNFC(_ piece: ArraySlice<Unicode.Scalar>, to out: inout [Unicode.Scalar]) {
        guard piece.contains(where: { $0.value >= 0x300 }) else {
            out.append(contentsOf: piece)
            return
        }
        var string = ""
        string.unicodeScalars.append(contentsOf: piece)
        let normalized = string.decomposedStringWithCanonicalMapping.precomposedStringWithCanonicalMapping
        out.append(contentsOf: normalized.unicodeScalars)
    }
}
