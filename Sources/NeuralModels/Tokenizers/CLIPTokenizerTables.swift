// The generated tables of the CLIP text cleaner and pre-tokenizer, parsed from the literal in
// CLIPTokenizerTableData.swift (written by Weights/fixtures/make_clip_tokenizer_fixtures.py; the
// format is described there). Each table is parsed once, on first use, straight from the
// literal's bytes in the binary: nothing is read from disk, so tokenization does not depend on
// a resource bundle being found at run time.

/// Tables the CLIP text cleaner and pre-tokenizer read; see `CLIPTextCleaner` and
/// `CLIPPreTokenizer`.
enum CLIPTokenizerTables {
    /// The HTML entity tables of Python's `html.unescape` and of ftfy.
    struct EntityTables: Sendable {
        /// Every HTML5 named character reference, keyed by name (without `&`, with `;` where the
        /// standard spells one).
        var html5: [String: [Unicode.Scalar]]
        /// ftfy's `HTML_ENTITIES`: the HTML5 names that end in `;` plus ftfy's all-caps spellings
        /// of lower-case names (`EACUTE;` → `É`).
        var ftfy: [String: [Unicode.Scalar]]
    }

    /// The entity tables (section `html5-entities`).
    static let entities: EntityTables = parseEntities(lines(of: "html5-entities"))

    /// Closed scalar ranges the split regex treats as letters (kind 1, `[\p{L}]`) or numbers
    /// (kind 2, `[\p{N}]`) although Unicode 14.0 has them unassigned, sorted. Consulted only for
    /// scalars the Swift runtime reports as unassigned.
    static let newerLettersAndNumbers: [(UInt32, UInt32, UInt8)] =
        lines(of: "newer-letters-and-numbers").map { line in
            let fields = hexFields(line)
            precondition(fields.count == 3 && (1...2).contains(fields[2]), "bad range line in CLIPTokenizerTables.data")
            return (fields[0], fields[1], UInt8(fields[2]))
        }

    /// Closed ranges of the supplementary-plane scalars that appear in a canonical decomposition
    /// mapping of Unicode 14.0 (the decomposed scalar or one of its parts), sorted. Every other
    /// supplementary starter is a normalization boundary on both sides.
    static let composingSupplementaryScalars: [(UInt32, UInt32)] =
        lines(of: "composing-supplementary-scalars").map { line in
            let fields = hexFields(line)
            precondition(fields.count == 2, "bad range line in CLIPTokenizerTables.data")
            return (fields[0], fields[1])
        }

    // MARK: Parsing

    typealias Line = Slice<UnsafeBufferPointer<UInt8>>

    /// The lines of the section headed `#name count`, checked against its count. The slices point
    /// into the literal, which lives as long as the program.
    static func lines(of name: String) -> [Line] {
        let bytes = UnsafeBufferPointer(start: data.utf8Start, count: data.utf8CodeUnitCount)
        let header = Array("#\(name) ".utf8)
        var result: [Line] = []
        var expected: Int?
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            if line.first == UInt8(ascii: "#") {
                if expected != nil { break }
                if line.starts(with: header) {
                    expected = Int(String(decoding: line.dropFirst(header.count), as: UTF8.self))
                    precondition(expected != nil, "bad section header in CLIPTokenizerTables.data")
                    result.reserveCapacity(expected!)
                }
            } else if expected != nil {
                result.append(line)
            }
        }
        precondition(expected == result.count, "section \(name) of CLIPTokenizerTables.data is damaged")
        return result
    }

    /// `name=HEX HEX...[/HEX HEX...]` lines into the HTML5 table and ftfy's.
    static func parseEntities(_ lines: [Line]) -> EntityTables {
        var html5: [String: [Unicode.Scalar]] = [:]
        var ftfy: [String: [Unicode.Scalar]] = [:]
        html5.reserveCapacity(lines.count)
        ftfy.reserveCapacity(2 * lines.count)
        var uppercase: [(String, [Unicode.Scalar])] = []
        for line in lines {
            guard let equals = line.firstIndex(of: UInt8(ascii: "=")) else {
                preconditionFailure("bad entity line in CLIPTokenizerTables.data")
            }
            let name = line[..<equals]
            let rest = line[(equals + 1)...]
            let slash = rest.firstIndex(of: UInt8(ascii: "/"))
            let key = String(decoding: name, as: UTF8.self)
            let value = scalars(rest[..<(slash ?? rest.endIndex)])
            html5[key] = value
            if name.last == UInt8(ascii: ";") { ftfy[key] = value }
            if let slash {
                let upper = name.map { (0x61...0x7A).contains($0) ? $0 - 0x20 : $0 }
                uppercase.append((String(decoding: upper, as: UTF8.self), scalars(rest[(slash + 1)...])))
            }
        }
        // ftfy adds its upper-case spellings over the HTML5 names.
        for (name, value) in uppercase { ftfy[name] = value }
        return EntityTables(html5: html5, ftfy: ftfy)
    }

    /// Space-separated hexadecimal scalars.
    static func scalars(_ field: Line) -> [Unicode.Scalar] {
        var result: [Unicode.Scalar] = []
        forEachHexNumber(in: field) { value in
            guard let scalar = Unicode.Scalar(value) else {
                preconditionFailure("bad scalar in CLIPTokenizerTables.data")
            }
            result.append(scalar)
        }
        return result
    }

    /// Space-separated hexadecimal numbers.
    static func hexFields(_ field: Line) -> [UInt32] {
        var values: [UInt32] = []
        forEachHexNumber(in: field) { values.append($0) }
        return values
    }

    /// Calls `body` with each space-separated hexadecimal number of `field`, in order.
    @inline(__always)
    static func forEachHexNumber(in field: Line, _ body: (UInt32) -> Void) {
        var value: UInt32 = 0
        var digits = 0
        for byte in field {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = value << 4 | UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = value << 4 | UInt32(byte - UInt8(ascii: "A") + 10)
            case UInt8(ascii: " "):
                precondition(digits > 0, "bad number in CLIPTokenizerTables.data")
                body(value)
                value = 0
                digits = 0
                continue
            default: preconditionFailure("bad number in CLIPTokenizerTables.data")
            }
            digits += 1
        }
        precondition(digits > 0, "bad number in CLIPTokenizerTables.data")
        body(value)
    }
}
