// open_clip's split pattern for `CLIPTokenizer`
// (`<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`,
// `regex` module, IGNORECASE) as a hand-written scanner's character classes and matchers.

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
