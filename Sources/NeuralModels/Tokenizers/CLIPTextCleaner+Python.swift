// Python 3.11's `str` methods as open_clip's cleaning uses them (`str.isspace`, `str.split` +
// `" ".join`, `str.lower` with Final_Sigma, the `\d` of `re`), on Unicode scalars, for
// `CLIPTextCleaner`. Python 3.11 has Unicode 14.0 tables: scalars the Swift runtime knows from a
// later version behave as Python leaves them.

extension CLIPTextCleaner {
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
