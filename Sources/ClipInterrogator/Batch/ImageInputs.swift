import Foundation

/// Finding the images a batch works on.
public enum ImageInputs {
    /// The file extensions taken from folders (any letter case).
    public static let extensions: Set<String> = ["jpg", "jpeg", "png"]

    /// A folder that cannot be listed.
    public struct FolderError: Error, CustomStringConvertible, Sendable {
        /// The folder.
        public let path: String
        /// `"cannot list folder <path>"`.
        public var description: String { "cannot list folder \(path)" }
    }

    /// The JPEG and PNG files in `folder` (and its subfolders when `recursive`),
    /// sorted by path so every machine sees the same order. Hidden files are skipped.
    public static func images(in folder: URL, recursive: Bool) throws -> [URL] {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw FolderError(path: folder.path)
        }
        var found: [URL] = []
        if recursive {
            guard let enumerator = manager.enumerator(at: folder, includingPropertiesForKeys: nil,
                                                      options: [.skipsHiddenFiles]) else { throw FolderError(path: folder.path) }
            for case let url as URL in enumerator where isImage(url) { found.append(url) }
        } else {
            let entries = try manager.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil,
                                                          options: [.skipsHiddenFiles])
            found = entries.filter(isImage)
        }
        return found.map(\.standardizedFileURL).sorted { $0.path < $1.path }
    }

    /// The files a list names, one path per line (as `--files-from` takes them):
    /// line ends `\n` or `\r\n`, blank lines skipped, each named as written.
    public static func files(listedIn text: String) -> [BatchItem] {
        text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).compactMap { line in
            let path = line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
            return path.isEmpty ? nil : BatchItem(url: URL(fileURLWithPath: path), name: path)
        }
    }

    /// The samples of the WebDataset shards `patterns` name (brace patterns,
    /// ``WebDataset/expand(_:)``), shard after shard, each named by its key. A
    /// shard that cannot be opened, or whose listing stops at a corrupt header,
    /// adds an unreadable item named after the shard (its path as expanded), so
    /// the run reports it and a merge expects it.
    /// - Throws: ``WebDataset/PatternError`` for a malformed pattern.
    public static func webDatasetItems(_ patterns: [String]) throws -> [BatchItem] {
        var items: [BatchItem] = []
        for pattern in patterns {
            for path in try WebDataset.expand(pattern) {
                let url = URL(fileURLWithPath: path)
                do {
                    let (samples, error) = try WebDataset.items(in: url)
                    items += samples
                    if let error { items.append(BatchItem(unreadable: url, name: path, reason: error.description)) }
                } catch {
                    items.append(BatchItem(unreadable: url, name: path, reason: "\(path): \(error)"))
                }
            }
        }
        return items
    }

    /// Entries with an image extension that are not folders (unreadable files and
    /// broken links are kept, so the batch reports them instead of hiding them).
    static func isImage(_ url: URL) -> Bool {
        guard extensions.contains(url.pathExtension.lowercased()) else { return false }
        var isDirectory: ObjCBool = false
        return !(FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue)
    }

    /// Groups of items whose sidecars (``BatchItem/sidecarURL``) are one file
    /// (`photo.png` and `photo.jpg` both write `photo.txt`), each group in input
    /// order; empty when every sidecar is distinct.
    public static func sidecarCollisions(_ items: [BatchItem]) -> [[BatchItem]] {
        var groups: [String: [BatchItem]] = [:], order: [String] = []
        for item in items {
            let key = ResolvedPath.following(item.sidecarURL.path)
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(item)
        }
        return order.compactMap { groups[$0]!.count > 1 ? groups[$0] : nil }
    }

    /// Whether `a` and `b` name the same file: the same inode when both exist,
    /// else the same path once symbolic links are followed.
    public static func sameFile(_ a: URL, _ b: URL) -> Bool {
        var first = stat(), second = stat()
        if stat(a.path, &first) == 0, stat(b.path, &second) == 0 {
            return first.st_dev == second.st_dev && first.st_ino == second.st_ino
        }
        return ResolvedPath.following(a.path) == ResolvedPath.following(b.path)
    }

    /// `url`'s path relative to `root` (its full path when outside `root`).
    public static func relativePath(of url: URL, to root: URL) -> String {
        let base = root.standardizedFileURL.path.hasSuffix("/") ? root.standardizedFileURL.path : root.standardizedFileURL.path + "/"
        let path = url.standardizedFileURL.path
        return path.hasPrefix(base) ? String(path.dropFirst(base.count)) : path
    }
}
