import Foundation

/// The files a model needs from its repository.
///
/// A cached snapshot is usable when it holds every required file and the
/// weights; optional files are fetched when the repository has them and
/// skipped when it answers 404. Applications define the sets their models need,
/// for instance as static properties in an extension:
///
/// ```swift
/// extension HubFileSet {
///     static let sentenceEncoder = HubFileSet([
///         .required("config.json"), .required("vocab.txt"), .safetensors(stem: "model"),
///     ])
/// }
/// ```
public struct HubFileSet: Sendable, Equatable {
    /// One file, or the weights.
    public enum Entry: Sendable, Equatable, Hashable {
        /// A file the model cannot load without.
        case required(String)
        /// A file used when present (a 404 is not an error).
        case optional(String)
        /// Safetensors weights called `stem`: `stem.safetensors`, or else
        /// `stem.safetensors.index.json` and every shard its `weight_map` names.
        case safetensors(stem: String)
    }

    /// The entries, fetched in this order (small files first, so that access
    /// errors show before a large download starts).
    public var entries: [Entry]

    /// A set of `entries`.
    /// - Parameter entries: the files, in the order they are to be fetched.
    public init(_ entries: [Entry]) {
        self.entries = entries
    }

    /// The files the model still needs in `directory` (required files and the
    /// weights, with shards named by an index found there); empty when it is complete.
    /// - Parameter directory: a model folder or cache snapshot.
    /// - Returns: the missing file names, relative to `directory`, in entry order.
    public func missingFiles(in directory: URL) -> [String] {
        var missing: [String] = []
        for entry in entries {
            switch entry {
            case .required(let name):
                if !Self.isFile(directory, name) { missing.append(name) }
            case .optional:
                break
            case .safetensors(let stem):
                let single = stem + ".safetensors", index = single + ".index.json"
                if Self.isFile(directory, single) { continue }
                guard Self.isFile(directory, index) else { missing.append(single); continue }
                guard let shards = try? Self.shards(ofIndex: directory.appendingPathComponent(index)) else {
                    missing.append(index)
                    continue
                }
                missing += shards.filter { !Self.isFile(directory, $0) }
            }
        }
        return missing
    }

    /// The shard file names the index at `url` lists in its `weight_map`, sorted and unique.
    /// - Throws: ``HubError/invalidIndex(file:reason:)``.
    static func shards(ofIndex url: URL) throws -> [String] {
        struct Index: Decodable { let weight_map: [String: String] }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw HubError.invalidIndex(file: url.path, reason: "cannot read the file")
        }
        do {
            let shards = Set(try JSONDecoder().decode(Index.self, from: data).weight_map.values).sorted()
            for shard in shards { try RepositoryPath.validateFile(shard) }
            return shards
        } catch let error as HubError {
            throw HubError.invalidIndex(file: url.path, reason: error.description)
        } catch {
            throw HubError.invalidIndex(file: url.path, reason: String(describing: error))
        }
    }

    /// Whether `name` in `directory` is a regular file (following symbolic links).
    static func isFile(_ directory: URL, _ name: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path, isDirectory: &isDirectory)
            && !isDirectory.boolValue
    }
}

/// Checks on names that become paths in the cache.
enum RepositoryPath {
    /// Rejects file names that are empty, absolute, or have empty, `.` or `..` components.
    static func validateFile(_ name: String) throws {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard !name.isEmpty, !name.hasPrefix("/"), !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }),
              !name.contains("\0") else {
            throw HubError.invalidName(name)
        }
    }

    /// Whether `value` is usable as one path component (hub etags and commit hashes).
    static func isSafeComponent(_ value: String) -> Bool {
        !value.isEmpty && value != "." && value != ".." && value.utf8.count <= 255
            && value.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)) }
    }

    /// Whether `value` is a full 40-digit hexadecimal commit hash.
    static func isCommitHash(_ value: String) -> Bool {
        value.utf8.count == 40 && value.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// Whether `id` is a valid `org/name` repository id (letters, digits, `-`,
    /// `_`, `.`; no `--` or `..`, not starting or ending with `-` or `.`).
    static func isRepositoryID(_ id: String) -> Bool {
        let parts = id.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !id.contains("--"), !id.contains("..") else { return false }
        return parts.allSatisfy { part in
            !part.isEmpty && part.count <= 96 && part.unicodeScalars.allSatisfy {
                $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0))
            } && !part.hasPrefix("-") && !part.hasPrefix(".") && !part.hasSuffix("-") && !part.hasSuffix(".")
        }
    }
}
