// String operations with Python's semantics (code points, not grapheme clusters),
// where the reference's prompt assembly depends on them.

extension String {
    /// Python's `self.startswith(prefix)`: compares Unicode scalars.
    func pythonHasPrefix(_ prefix: String) -> Bool {
        unicodeScalars.starts(with: prefix.unicodeScalars)
    }

    /// Python's `self.split(separator)` for a non-empty separator: splits on every
    /// occurrence of its scalars, keeping empty pieces.
    func pythonSplit(_ separator: String) -> [String] {
        let text = Array(unicodeScalars), pattern = Array(separator.unicodeScalars)
        var pieces: [String] = [], start = 0, i = 0
        while i + pattern.count <= text.count {
            if text[i..<(i + pattern.count)].elementsEqual(pattern) {
                pieces.append(String(String.UnicodeScalarView(text[start..<i])))
                i += pattern.count
                start = i
            } else {
                i += 1
            }
        }
        pieces.append(String(String.UnicodeScalarView(text[start...])))
        return pieces
    }
}
