// Port of ftfy 6.3.1's `unescape_html` and Python 3.11's `html.unescape` for
// `CLIPTextCleaner` (CLIPTextCleaner.swift has the whole cleaning pipeline). The entity tables
// come from generated data, parsed on first use by CLIPTokenizerTables.swift.

extension CLIPTextCleaner {
    /// The named character references of HTML5, keyed by name (without `&`, with `;` where the
    /// standard spells one).
    static let html5Entities: [String: [Unicode.Scalar]] = CLIPTokenizerTables.entities.html5

    /// ftfy's `HTML_ENTITIES`: the HTML5 names that end in `;` plus ftfy's upper-case spellings.
    static let ftfyEntities: [String: [Unicode.Scalar]] = CLIPTokenizerTables.entities.ftfy

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
}
