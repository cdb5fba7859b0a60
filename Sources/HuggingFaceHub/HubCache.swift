import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The Hugging Face hub cache, laid out as `huggingface_hub` lays it out so that
/// both share files:
///
/// ```
/// <root>/models--ORG--NAME/
///   blobs/<etag>                        file contents, named by the hub's etag
///                                       (SHA-256 for LFS files, git SHA-1 otherwise)
///   snapshots/<commit>/<file> -> ../../blobs/<etag>   one directory per commit
///   refs/main                           the commit `main` resolved to
///   .no_exist/<commit>/<file>           files the hub answered 404 for
/// <root>/.locks/models--ORG--NAME/<etag>.lock
/// ```
public struct HubCache: Sendable, Equatable {
    /// The cache root (`HF_HUB_CACHE`).
    public let root: URL

    /// The cache at `root`.
    /// - Parameter root: the cache root (``HubEnvironment/cacheDirectory``).
    public init(root: URL) {
        self.root = root
    }

    /// `models--ORG--NAME`: the folder name of `repository`.
    /// - Parameter repository: an `org/name` repository id.
    /// - Returns: the folder's name (not a path).
    public static func folderName(_ repository: String) -> String {
        (["models"] + repository.split(separator: "/").map(String.init)).joined(separator: "--")
    }

    /// The repository a `models--ORG--NAME/snapshots/<commit>` directory belongs
    /// to, or nil if `directory` is not laid out that way.
    /// - Parameter directory: any directory.
    /// - Returns: the `org/name` repository id, or nil.
    public static func repository(ofSnapshot directory: URL) -> String? {
        let components = directory.standardizedFileURL.pathComponents
        guard components.count >= 3, components[components.count - 2] == "snapshots" else { return nil }
        let parts = components[components.count - 3].components(separatedBy: "--")
        guard parts.count == 3, parts[0] == "models" else { return nil }
        let id = parts[1] + "/" + parts[2]
        return RepositoryPath.isRepositoryID(id) ? id : nil
    }

    /// `<root>/models--ORG--NAME`.
    /// - Parameter repository: an `org/name` repository id.
    /// - Returns: the repository's folder in the cache (which need not exist).
    public func repositoryDirectory(_ repository: String) -> URL {
        root.appendingPathComponent(Self.folderName(repository), isDirectory: true)
    }

    /// `<root>/models--ORG--NAME/snapshots/<commit>`.
    /// - Parameters:
    ///   - repository: an `org/name` repository id.
    ///   - commit: a commit hash (or the name of a snapshot folder made by hand).
    /// - Returns: the snapshot folder (which need not exist).
    public func snapshotDirectory(_ repository: String, commit: String) -> URL {
        repositoryDirectory(repository).appendingPathComponent("snapshots", isDirectory: true)
            .appendingPathComponent(commit, isDirectory: true)
    }

    /// `<root>/models--ORG--NAME/blobs/<etag>`.
    /// - Parameters:
    ///   - repository: an `org/name` repository id.
    ///   - etag: the file's etag (SHA-256 for LFS files, git SHA-1 otherwise).
    /// - Returns: the blob's path (which need not exist).
    public func blobURL(_ repository: String, etag: String) -> URL {
        repositoryDirectory(repository).appendingPathComponent("blobs").appendingPathComponent(etag)
    }

    /// The commit `refs/<revision>` names, if recorded.
    /// - Parameters:
    ///   - repository: an `org/name` repository id.
    ///   - revision: a branch or tag.
    /// - Returns: the commit hash, or nil when no usable ref is recorded.
    public func commit(_ repository: String, revision: String) -> String? {
        guard (try? RepositoryPath.validateFile(revision)) != nil else { return nil }
        let url = repositoryDirectory(repository).appendingPathComponent("refs").appendingPathComponent(revision)
        guard let data = FileManager.default.contents(atPath: url.path),
              let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
              RepositoryPath.isSafeComponent(text) else { return nil }
        return text
    }

    /// The snapshot directories of `repository`, newest first.
    /// - Parameter repository: an `org/name` repository id.
    /// - Returns: the folders under `snapshots/`, by modification date, newest first.
    public func snapshots(_ repository: String) -> [URL] {
        let directory = repositoryDirectory(repository).appendingPathComponent("snapshots", isDirectory: true)
        let keys: [URLResourceKey] = [.isDirectoryKey, .contentModificationDateKey]
        guard let entries = try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: keys) else {
            return []
        }
        let dated = entries.compactMap { url -> (URL, Date)? in
            guard let values = try? url.resourceValues(forKeys: Set(keys)), values.isDirectory == true else { return nil }
            return (url, values.contentModificationDate ?? .distantPast)
        }
        return dated.sorted { ($0.1, $0.0.lastPathComponent) > ($1.1, $1.0.lastPathComponent) }.map(\.0)
    }

    /// A cached snapshot of `repository` at `revision` that holds all of `files`, or nil.
    ///
    /// A commit-hash revision looks only at that commit's snapshot; a branch or tag
    /// looks at the commit its ref names (or a snapshot folder named like the
    /// revision); for `main` any other complete snapshot also serves, newest first.
    ///
    /// - Parameters:
    ///   - repository: an `org/name` repository id.
    ///   - files: the files that must all be present.
    ///   - revision: a branch, tag or commit hash.
    /// - Returns: the snapshot folder and its name (the commit), or nil.
    public func completeSnapshot(_ repository: String, files: HubFileSet, revision: String = "main") -> (directory: URL, commit: String)? {
        for candidate in candidates(repository, revision: revision) where files.missingFiles(in: candidate).isEmpty {
            return (candidate, candidate.lastPathComponent)
        }
        return nil
    }

    /// Where files of `repository` at `revision` belong when they are put in by
    /// hand, and which of `files` that snapshot lacks: the snapshot the ref names,
    /// else the most complete existing one, else `snapshots/<revision>`.
    func placement(_ repository: String, files: HubFileSet, revision: String) -> (directory: URL, missing: [String]) {
        let existing = candidates(repository, revision: revision)
            .filter { FileManager.default.fileExists(atPath: $0.path) }
            .map { ($0, files.missingFiles(in: $0)) }
        if let best = existing.min(by: { $0.1.count < $1.1.count }) { return best }
        let folder = RepositoryPath.isSafeComponent(revision) ? revision : "main"
        let directory = snapshotDirectory(repository, commit: folder)
        return (directory, files.missingFiles(in: directory))
    }

    /// The snapshot directories that may serve `revision`, in order of preference.
    private func candidates(_ repository: String, revision: String) -> [URL] {
        if RepositoryPath.isCommitHash(revision) { return [snapshotDirectory(repository, commit: revision)] }
        var result: [URL] = []
        if let commit = commit(repository, revision: revision) { result.append(snapshotDirectory(repository, commit: commit)) }
        if RepositoryPath.isSafeComponent(revision) { result.append(snapshotDirectory(repository, commit: revision)) }
        if revision == "main" {
            for snapshot in snapshots(repository) where !result.contains(where: { $0.path == snapshot.path }) {
                result.append(snapshot)
            }
        }
        return result
    }

    // MARK: Writing

    /// Records that `revision` resolves to `commit` (`refs/<revision>`), atomically.
    func setCommit(_ commit: String, repository: String, revision: String) throws {
        guard revision != commit else { return }
        try RepositoryPath.validateFile(revision)
        if self.commit(repository, revision: revision) == commit { return }
        let url = repositoryDirectory(repository).appendingPathComponent("refs").appendingPathComponent(revision)
        try Self.createDirectory(url.deletingLastPathComponent())
        try writeFileAtomically(Array(commit.utf8), to: url.path)
    }

    /// Points `snapshots/<commit>/<file>` at `blobs/<etag>` with a relative symbolic
    /// link, replacing whatever was there atomically.
    func link(_ repository: String, commit: String, file: String, etag: String) throws {
        let pointer = snapshotDirectory(repository, commit: commit).appendingPathComponent(file)
        try Self.createDirectory(pointer.deletingLastPathComponent())
        let depth = file.split(separator: "/").count + 1
        let target = String(repeating: "../", count: depth) + "blobs/" + etag
        let temporary = pointer.deletingLastPathComponent()
            .appendingPathComponent(".\(pointer.lastPathComponent).\(UUID().uuidString).tmp").path
        guard symlink(target, temporary) == 0 else { throw HubError.posix(temporary, "symlink") }
        guard rename(temporary, pointer.path) == 0 else {
            let error = HubError.posix(pointer.path, "rename")
            unlink(temporary)
            throw error
        }
    }

    /// `.no_exist/<commit>/<file>`.
    private func missingMarker(_ repository: String, commit: String, file: String) -> URL {
        repositoryDirectory(repository).appendingPathComponent(".no_exist").appendingPathComponent(commit)
            .appendingPathComponent(file)
    }

    /// Whether the hub answered 404 for `file` at `commit` before.
    func isRecordedMissing(_ repository: String, commit: String, file: String) -> Bool {
        FileManager.default.fileExists(atPath: missingMarker(repository, commit: commit, file: file).path)
    }

    /// Records that the hub has no `file` at `commit` (`.no_exist/<commit>/<file>`),
    /// as `huggingface_hub` does; failures are ignored.
    func recordMissing(_ repository: String, commit: String, file: String) {
        let marker = missingMarker(repository, commit: commit, file: file)
        try? FileManager.default.createDirectory(at: marker.deletingLastPathComponent(), withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: marker.path, contents: nil)
    }

    /// `<root>/.locks/models--ORG--NAME/<etag>.lock`, the lock `huggingface_hub` also takes.
    func lockURL(_ repository: String, etag: String) -> URL {
        root.appendingPathComponent(".locks").appendingPathComponent(Self.folderName(repository))
            .appendingPathComponent(etag + ".lock")
    }

    /// Creates `url` and its parents.
    static func createDirectory(_ url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw HubError.fileSystem(path: url.path, operation: "create directory", reason: error.localizedDescription)
        }
    }
}

/// An exclusive `flock` on a lock file, held until ``release()``; it excludes
/// other processes (and other descriptors in this one) downloading the same blob.
final class HubFileLock {
    private var descriptor: Int32

    /// Blocks until the lock at `url` is held.
    init(_ url: URL) throws {
        try HubCache.createDirectory(url.deletingLastPathComponent())
        descriptor = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else { throw HubError.posix(url.path, "open") }
        while flock(descriptor, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let error = HubError.posix(url.path, "flock")
            close(descriptor)
            descriptor = -1
            throw error
        }
    }

    /// Releases the lock.
    func release() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
