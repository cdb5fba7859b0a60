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

    // MARK: HTML entities

    /// The named character references of HTML5, keyed by name (without `&`, with `;` where the
    /// standard spells one).
    static let html5Entities: [String: [Unicode.Scalar]] = parseEntityTable(CLIPTokenizerTables.html5Entities)

    /// ftfy's `HTML_ENTITIES`: the HTML5 names that end in `;` plus ftfy's upper-case spellings.
    static let ftfyEntities: [String: [Unicode.Scalar]] = {
        var map = html5Entities.filter { $0.key.hasSuffix(";") }
        for (name, value) in parseEntityTable(CLIPTokenizerTables.ftfyUppercaseEntities) { map[name] = value }
        return map
    }()

    static func parseEntityTable(_ table: String) -> [String: [Unicode.Scalar]] {
        var map: [String: [Unicode.Scalar]] = [:]
        for line in table.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let name = String(line[..<equals])
            let value = line[line.index(after: equals)...].split(separator: " ").compactMap {
                UInt32($0, radix: 16).flatMap(Unicode.Scalar.init)
            }
            map[name] = value
        }
        return map
    }

    /// Looks a name up in an entity table; only pure-ASCII names can match.
    @inline(__always)
    static func lookUp(_ name: ArraySlice<Unicode.Scalar>, in table: [String: [Unicode.Scalar]]) -> [Unicode.Scalar]? {
        guard name.allSatisfy({ $0.isASCII }) else { return nil }
        var key = ""
        key.unicodeScalars.append(contentsOf: name)
        return table[key]
    }

    @inline(__always)
    static func isASCIIAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        default: return false
        }
    }

    @inline(__always)
    static func isASCIIDigit(_ scalar: Unicode.Scalar) -> Bool { (0x30...0x39).contains(scalar.value) }

    @inline(__always)
    static func isASCIIHexDigit(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x30...0x39, 0x41...0x46, 0x61...0x66: return true
        default: return false
        }
    }

    /// ftfy's `unescape_html`: each match of `&#?[0-9A-Za-z]{1,24};` is replaced by its entry in
    /// ftfy's entity table; a numeric reference is replaced by `html.unescape` of it unless that
    /// leaves a `;` behind; anything else stays.
    static func ftfyUnescapeHTML(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains("&") else { return text }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var index = 0
        while index < text.count {
            guard text[index] == "&" else {
                out.append(text[index])
                index += 1
                continue
            }
            var start = index + 1
            let numeric = start < text.count && text[start] == "#"
            if numeric { start += 1 }
            var end = start
            while end < text.count, end - start < 24, isASCIIAlphanumeric(text[end]) { end += 1 }
            guard end > start, end < text.count, text[end] == ";" else {
                out.append("&")
                index += 1
                continue
            }
            let match = text[index...end]  // "&" ... ";"
            if let value = lookUp(match.dropFirst(), in: ftfyEntities) {
                out.append(contentsOf: value)
            } else if numeric {
                let unescaped = htmlUnescape(Array(match))
                out.append(contentsOf: unescaped.contains(";") ? Array(match) : unescaped)
            } else {
                out.append(contentsOf: match)
            }
            index = end + 1
        }
        return out
    }

    /// Python's `html.unescape`: numeric references (`&#123;`, `&#x7B;`, `;` optional) with
    /// HTML5's replacements for invalid ones, and named references, including the longest known
    /// prefix of an unterminated name (`&notit;` -> `¬it;`).
    static func htmlUnescape(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard text.contains("&") else { return text }
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var index = 0
        while index < text.count {
            guard text[index] == "&", index + 1 < text.count else {
                out.append(text[index])
                index += 1
                continue
            }
            let next = index + 1
            if text[next] == "#" {
                // `#[0-9]+;?` or `#[xX][0-9a-fA-F]+;?`
                var digitsStart = next + 1
                var hex = false
                if digitsStart < text.count, isASCIIDigit(text[digitsStart]) {
                    hex = false
                } else if digitsStart + 1 < text.count, text[digitsStart] == "x" || text[digitsStart] == "X",
                          isASCIIHexDigit(text[digitsStart + 1]) {
                    hex = true
                    digitsStart += 1
                } else {
                    out.append("&")  // no reference starts here (a name cannot start with "#")
                    index += 1
                    continue
                }
                var end = digitsStart
                var value: UInt64 = 0
                while end < text.count, hex ? isASCIIHexDigit(text[end]) : isASCIIDigit(text[end]) {
                    let digit = UInt64(Character(text[end]).hexDigitValue!)
                    value = min(value * (hex ? 16 : 10) + digit, 0x1_0000_0000)  // saturate past 0x10FFFF
                    end += 1
                }
                if end < text.count, text[end] == ";" { end += 1 }
                out.append(contentsOf: numericCharacterReference(value))
                index = end
                continue
            }
            // `[^\t\n\f <&#;]{1,32};?`
            var end = next
            while end < text.count, end - next < 32, !isNameTerminator(text[end]) { end += 1 }
            guard end > next else {
                out.append("&")
                index += 1
                continue
            }
            if end < text.count, text[end] == ";" { end += 1 }
            let name = text[next..<end]
            if let value = lookUp(name, in: html5Entities) {
                out.append(contentsOf: value)
            } else {
                var replaced = false
                var length = name.count - 1
                while length >= 2 {
                    if let value = lookUp(name.prefix(length), in: html5Entities) {
                        out.append(contentsOf: value)
                        out.append(contentsOf: name.dropFirst(length))
                        replaced = true
                        break
                    }
                    length -= 1
                }
                if !replaced {
                    out.append("&")
                    out.append(contentsOf: name)
                }
            }
            index = end
        }
        return out
    }

    @inline(__always)
    static func isNameTerminator(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "\t", "\n", "\u{0C}", " ", "<", "&", "#", ";": return true
        default: return false
        }
    }

    /// Python's `html._replace_charref` for a numeric reference with value `value` (saturated).
    static func numericCharacterReference(_ value: UInt64) -> [Unicode.Scalar] {
        switch value {
        case 0x00: return ["\u{FFFD}"]
        case 0x0D: return ["\r"]
        case 0x80...0x9F: return [windows1252C1(UInt32(value))]
        case 0xD800...0xDFFF, 0x110000...: return ["\u{FFFD}"]
        case 0x01...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0xFDD0...0xFDEF: return []
        default:
            if value & 0xFFFE == 0xFFFE { return [] }  // U+xFFFE and U+xFFFF of every plane
            return [Unicode.Scalar(UInt32(value))!]
        }
    }

    // MARK: Python str methods

    /// Python's `str.isspace()`: the White_Space property plus U+001C–U+001F.
    @inline(__always)
    static func isPythonSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20: return true
        case 0x21..<0x85: return false
        default: return scalar.properties.isWhitespace
        }
    }

    /// `" ".join(text.split())`: runs of Python whitespace become one space, none at the ends.
    static func collapseWhitespace(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        var pendingSpace = false
        for scalar in text {
            if isPythonSpace(scalar) {
                if !out.isEmpty { pendingSpace = true }
            } else {
                if pendingSpace {
                    out.append(" ")
                    pendingSpace = false
                }
                out.append(scalar)
            }
        }
        return out
    }

    /// Whether Python 3.11 (Unicode 14.0) knows the scalar; later scalars keep Python's
    /// "unassigned" behaviour (no case mapping, not a digit).
    @inline(__always)
    static func isKnownToReference(_ properties: Unicode.Scalar.Properties) -> Bool {
        guard let age = properties.age else { return false }
        return age.major < 14 || (age.major == 14 && age.minor == 0)
    }

    /// Python's `\d` in a `str` pattern: general category Nd.
    @inline(__always)
    static func isPythonDecimalDigit(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII { return isASCIIDigit(scalar) }
        let properties = scalar.properties
        return properties.generalCategory == .decimalNumber && isKnownToReference(properties)
    }

    /// Python's `str.lower()`: the full lower-case mapping of each scalar, and U+03A3 becoming
    /// final sigma (U+03C2) in the Final_Sigma context.
    static func pythonLower(_ text: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.count)
        for (index, scalar) in text.enumerated() {
            if scalar.value < 0x80 {
                out.append((0x41...0x5A).contains(scalar.value) ? Unicode.Scalar(scalar.value | 0x20)! : scalar)
            } else if scalar.value == 0x3A3 {
                out.append(isFinalSigma(text, at: index) ? "\u{03C2}" : "\u{03C3}")
            } else {
                appendLowercase(of: scalar, to: &out)
            }
        }
        return out
    }

    @inline(__always)
    static func appendLowercase(of scalar: Unicode.Scalar, to out: inout [Unicode.Scalar]) {
        let properties = scalar.properties
        guard properties.changesWhenLowercased, isKnownToReference(properties) else {
            out.append(scalar)
            return
        }
        out.append(contentsOf: properties.lowercaseMapping.unicodeScalars)
    }

    /// CPython's `handle_capital_sigma`: preceded by a cased letter (skipping case-ignorable
    /// scalars) and not followed by one.
    /// Cased and Case_Ignorable come from Unicode 14, like the rest of Python 3.11's tables.
    static func isFinalSigma(_ text: [Unicode.Scalar], at index: Int) -> Bool {
        func isCased(_ scalar: Unicode.Scalar) -> Bool {
            let properties = scalar.properties
            return properties.isCased && isKnownToReference(properties)
        }
        func isCaseIgnorable(_ scalar: Unicode.Scalar) -> Bool {
            let properties = scalar.properties
            return properties.isCaseIgnorable && isKnownToReference(properties)
        }
        var before = index - 1
        while before >= 0, isCaseIgnorable(text[before]) { before -= 1 }
        guard before >= 0, isCased(text[before]) else { return false }
        var after = index + 1
        while after < text.count, isCaseIgnorable(text[after]) { after += 1 }
        return after == text.count || !isCased(text[after])
    }
}
