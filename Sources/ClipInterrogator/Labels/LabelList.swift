import Foundation
import NeuralCore

/// Reading label lists the way clip-interrogator 0.6.0's `load_list` does:
/// `[line.strip() for line in open(path, encoding='utf-8', errors='replace').readlines()]`.
public enum LabelList {
    /// A label file that could not be read.
    public struct ReadError: Error, LocalizedError, CustomStringConvertible, Sendable {
        /// The file.
        public let path: String
        /// `"<path>: cannot read label list"`.
        public var description: String { "\(path): cannot read label list" }
        /// The same text as ``description``.
        public var errorDescription: String? { description }
    }

    /// A label file without a single label (empty, or blank lines only).
    public struct EmptyListError: Error, LocalizedError, CustomStringConvertible, Sendable, Equatable {
        /// The file.
        public let path: String
        /// `"<path>: no labels (the file is empty or has only blank lines)"`.
        public var description: String { "\(path): no labels (the file is empty or has only blank lines)" }
        /// The same as ``description``.
        public var errorDescription: String? { description }
    }

    /// The lines of the file at `url`, each stripped; empty lines are kept, as the
    /// reference keeps them.
    /// - Throws: ``ReadError`` when the file cannot be read.
    public static func load(contentsOf url: URL) throws -> [String] {
        guard let data = try? readRegularFile(url.path, limit: maximumTextFileBytes) else { throw ReadError(path: url.path) }
        return parse(data)
    }

    /// A user's label file (the CLI's `--labels`): its lines as ``load(contentsOf:)``
    /// reads them, without the blank ones (an empty label would join every
    /// prompt as ", ,").
    /// - Throws: ``ReadError``; ``EmptyListError`` when no label is left.
    public static func loadLabels(contentsOf url: URL) throws -> [String] {
        let labels = try load(contentsOf: url).filter { !$0.isEmpty }
        guard !labels.isEmpty else { throw EmptyListError(path: url.path) }
        return labels
    }

    /// Splits UTF-8 text (invalid bytes become U+FFFD) into lines with Python's
    /// universal newlines (`\n`, `\r\n`, `\r`; no empty item after a final
    /// newline) and strips each with Python's `str.strip()`.
    public static func parse(_ data: Data) -> [String] {
        let text = String(decoding: data, as: UTF8.self)
        var lines: [String] = []
        var current = String.UnicodeScalarView()
        var iterator = text.unicodeScalars.makeIterator()
        var pending = iterator.next()
        while let scalar = pending {
            pending = iterator.next()
            if scalar == "\n" || scalar == "\r" {
                if scalar == "\r", pending == "\n" { pending = iterator.next() }
                lines.append(pythonStripped(String(current)))
                current = String.UnicodeScalarView()
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { lines.append(pythonStripped(String(current))) }
        return lines
    }

    /// `s.strip()` in Python: removes leading and trailing characters for which
    /// `str.isspace()` holds (Unicode White_Space plus the separators U+001C–U+001F).
    public static func pythonStripped(_ s: String) -> String {
        let scalars = s.unicodeScalars
        func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace || (0x1C...0x1F).contains(c.value) }
        guard let first = scalars.firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !isSpace($0) })!
        return String(scalars[first...last])
    }
}

/// The label tables clip-interrogator 0.6.0 builds, from its vendored lists
/// (bundled byte-identical with the package).
public enum ReferenceLabels {
    /// The reference's list files.
    public enum ListFile: String, CaseIterable, Sendable {
        case artists, flavors, mediums, movements, negative
    }

    /// The bundled copy of a list file (see ``InstalledData/labelListDirectory()``).
    /// - Throws: ``InstalledData/NotFound`` when the lists are not installed.
    public static func url(of file: ListFile) throws -> URL {
        try InstalledData.labelListDirectory().appendingPathComponent(file.rawValue + ".txt")
    }

    /// A bundled list, read as `load_list` reads it.
    /// - Throws: ``InstalledData/NotFound``, ``LabelList/ReadError``.
    public static func list(_ file: ListFile) throws -> [String] {
        try LabelList.load(contentsOf: url(of: file))
    }

    /// The 18 site names of the trending table, spelled as in 0.6.0 ("dribble" included).
    public static let sites = [
        "Artstation", "behance", "cg society", "cgsociety", "deviantart", "dribble",
        "flickr", "instagram", "pexels", "pinterest", "pixabay", "pixiv", "polycount",
        "reddit", "shutterstock", "tumblr", "unsplash", "zbrush central",
    ]

    /// The 72 trending labels: each site, then "trending on X", "featured on X",
    /// "X contest winner".
    public static var trendings: [String] {
        sites + sites.map { "trending on \($0)" } + sites.map { "featured on \($0)" } + sites.map { "\($0) contest winner" }
    }

    /// "by X" for every artist, then "inspired by X" for every artist.
    public static func artists(from raw: [String]) -> [String] {
        raw.map { "by \($0)" } + raw.map { "inspired by \($0)" }
    }
}
