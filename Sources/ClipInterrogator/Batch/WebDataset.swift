import Foundation

/// WebDataset shards (what img2dataset writes): tar files whose members are
/// grouped into samples by key — `dir/000123.jpg` and `dir/000123.txt` are the
/// `jpg` and `txt` of sample `dir/000123` — read in place, never extracted.
public enum WebDataset {
    /// The member extensions taken as a sample's image (any letter case).
    public static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]

    /// A sample whose image cannot be used (truncated, over the size limit, not
    /// an image).
    public struct SampleError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
        /// What was wrong with the sample, naming the shard and the key.
        public let description: String
        /// The same as ``description``.
        public var errorDescription: String? { description }
    }

    /// A shard pattern that cannot be expanded.
    public struct PatternError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
        /// The pattern.
        public let pattern: String
        /// What is wrong with it.
        public let reason: String
        /// `"<pattern>: <reason>"`.
        public var description: String { "\(pattern): \(reason)" }
        /// The same as ``description``.
        public var errorDescription: String? { description }
    }

    /// Most shard names one pattern may expand to.
    public static let maximumExpansion = 1_000_000

    /// The shard names of a brace pattern as WebDataset and bash expand it:
    /// `shard-{00000..00099}.tar` (numeric ranges keep the zero padding),
    /// `{train,val}-{0..3}.tar` (lists, several groups).
    /// - Throws: ``PatternError`` for an unbalanced brace, a reversed or
    ///   oversized range.
    public static func expand(_ pattern: String) throws -> [String] {
        guard let open = pattern.firstIndex(of: "{") else {
            guard !pattern.contains("}") else { throw PatternError(pattern: pattern, reason: "unbalanced '}'") }
            return [pattern]
        }
        guard let close = pattern[open...].firstIndex(of: "}") else { throw PatternError(pattern: pattern, reason: "unbalanced '{'") }
        let head = String(pattern[..<open]), body = String(pattern[pattern.index(after: open)..<close])
        let tails = try expand(String(pattern[pattern.index(after: close)...]))
        var choices: [String]
        if let range = body.range(of: ".."), let low = Int(body[..<range.lowerBound]), let high = Int(body[range.upperBound...]) {
            guard low >= 0, low <= high else { throw PatternError(pattern: pattern, reason: "range {\(body)} must go up from 0 or more") }
            guard high - low < maximumExpansion else { throw PatternError(pattern: pattern, reason: "range {\(body)} is too long") }
            let width = body[..<range.lowerBound].count
            choices = (low...high).map { value in
                let digits = String(value)
                return String(repeating: "0", count: max(0, width - digits.count)) + digits
            }
        } else {
            choices = body.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        guard choices.count * tails.count <= maximumExpansion else { throw PatternError(pattern: pattern, reason: "expands to too many names") }
        return choices.flatMap { choice in tails.map { head + choice + $0 } }
    }

    /// The key and extension of a member path: the file name splits at its first
    /// dot (`a/b.c.jpg` → `a/b`, `c.jpg`), as WebDataset's `base_plus_ext`.
    public static func keyAndExtension(_ path: String) -> (key: String, extension: String) {
        let slash = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        guard let dot = path[slash...].firstIndex(of: ".") else { return (path, "") }
        return (String(path[..<dot]), String(path[path.index(after: dot)...]))
    }

    /// Whether an extension names an image member (`jpg`, `JPEG`, `seg.png`).
    static func isImage(_ fileExtension: String) -> Bool {
        imageExtensions.contains(String(fileExtension.split(separator: ".").last ?? "").lowercased())
    }

    /// The samples of the shard at `url` that have an image member, as batch
    /// items named by their key (`__key__`), in archive order: the first image
    /// member of each key, located in the archive (read later, by
    /// ``BatchItem/loadImage()``). Only the headers are read; the archive is never
    /// extracted. A corrupt header ends the listing: the samples before it are
    /// returned with the error.
    /// - Throws: when the file cannot be opened.
    public static func items(in url: URL) throws -> (items: [BatchItem], error: TarReader.ReadError?) {
        var reader = try TarReader(contentsOf: url)
        var items: [BatchItem] = [], seen = Set<String>()
        do {
            while let member = try reader.next(readingData: false) {
                let (key, fileExtension) = keyAndExtension(member.name)
                guard isImage(fileExtension), seen.insert(key).inserted else { continue }
                items.append(BatchItem(shard: url, key: key, member: .init(offset: member.offset, size: member.size)))
            }
        } catch let error as TarReader.ReadError {
            return (items, error)
        }
        return (items, nil)
    }
}
