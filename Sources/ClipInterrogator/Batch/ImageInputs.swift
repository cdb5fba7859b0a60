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

    /// Entries with an image extension that are not folders (unreadable files and
    /// broken links are kept, so the batch reports them instead of hiding them).
    static func isImage(_ url: URL) -> Bool {
        guard extensions.contains(url.pathExtension.lowercased()) else { return false }
        var isDirectory: ObjCBool = false
        return !(FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue)
    }

    /// Shard `index` (1-based) of `count`: the items whose name (the path
    /// relative to the folder for folder images, the path as given for listed
    /// files) hashes (FNV-1a, 64-bit) to that shard. Deterministic on every
    /// machine and stable when other files come and go; every item falls in
    /// exactly one shard. Requires `1 <= index <= count` (``parseShard(_:)``
    /// gives only such pairs).
    public static func shard(_ items: [BatchItem], index: Int, of count: Int) -> [BatchItem] {
        precondition(count >= 1 && (1...count).contains(index), "shard \(index)/\(count)")
        return items.filter { Int(fnv1a($0.name) % UInt64(count)) == index - 1 }
    }

    /// `I/N` as (I, N) when both are integers with `1 <= I <= N`; nil otherwise
    /// (`1/x/4`, `-1/4`, `0/3`, `5/4`).
    public static func parseShard(_ text: String) -> (index: Int, count: Int)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]), count >= 1, (1...count).contains(index)
        else { return nil }
        return (index, count)
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

    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01B3
        }
        return hash
    }
}
