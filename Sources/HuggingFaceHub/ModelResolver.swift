import Foundation

/// Progress of one file's download.
public struct HubDownloadProgress: Sendable, Equatable {
    /// The repository (`openai/clip-vit-large-patch14`).
    public var repository: String
    /// The file within it (`model.safetensors`).
    public var file: String
    /// Bytes of the file on disk so far (a resumed download starts above zero).
    public var completedBytes: Int64
    /// The file's size, when known.
    public var totalBytes: Int64?

    /// A report of `completedBytes` of `totalBytes` of `repository`'s `file`.
    /// - Parameters:
    ///   - repository: the repository id.
    ///   - file: the file within it.
    ///   - completedBytes: bytes of the file on disk so far.
    ///   - totalBytes: the file's size, or nil when unknown.
    public init(repository: String, file: String, completedBytes: Int64, totalBytes: Int64?) {
        self.repository = repository
        self.file = file
        self.completedBytes = completedBytes
        self.totalBytes = totalBytes
    }

    /// `completedBytes / totalBytes` in 0…1, or nil when the size is unknown.
    public var fraction: Double? {
        guard let totalBytes, totalBytes > 0 else { return nil }
        return min(1, Double(completedBytes) / Double(totalBytes))
    }
}

/// How persistently to download.
public struct HubDownloadOptions: Sendable, Equatable {
    /// Further attempts after a connection failure (or a 5xx, 408, 429) that made no
    /// progress; an attempt that received data resets the count, and each resumes
    /// where the last stopped (`huggingface_hub` also uses 5).
    public var maxRetries: Int = 5
    /// Seconds to wait before each further attempt.
    public var retryDelay: TimeInterval = 1
    /// Seconds without any data after which a request fails.
    public var timeout: TimeInterval = 60
    /// Most redirects one request follows.
    public var maxRedirects: Int = 10

    /// The defaults.
    public init() {}
}

/// A model's files on disk, and where they came from.
public struct ResolvedModel: Sendable, Equatable {
    /// Where the files came from.
    public enum Source: Sendable, Equatable {
        /// A directory the caller named, used as is.
        case localDirectory
        /// A snapshot already in the hub cache (no network used).
        case cache
        /// Downloaded (partly or wholly) into the hub cache just now.
        case download
    }

    /// The directory holding the files (`config.json`, `model.safetensors`, …): the
    /// caller's directory or a cache snapshot (whose files are links into `blobs/`).
    public let directory: URL
    /// The repository id, when known (for a local directory only if it is a cache snapshot).
    public let repository: String?
    /// The snapshot folder's name: the commit hash (unless the folder was made by
    /// hand); nil for a local directory outside the cache.
    public let commit: String?
    /// Where the files came from.
    public let source: Source
}

/// Finds a model's files: a local directory, a snapshot in the Hugging Face cache,
/// or a download from the hub into that cache.
///
/// A model is named by (a) an existing directory, used as is; (b) an alias the
/// application supplies (``RepositoryAliases``); or (c) a repository id
/// (`org/name`). For (b) and (c) a cached snapshot holding every needed file is
/// used without any network access; otherwise the missing files are downloaded
/// from `{endpoint}/{repo}/resolve/{revision}/{file}` into the cache layout that
/// `huggingface_hub` uses (so Python tools and this library share downloads),
/// unless offline.
///
/// Downloads resume partial files, are checked against the size and (for LFS
/// files) the SHA-256 the hub announces, and are moved into place atomically; a
/// failed check leaves nothing behind. The token goes only to hub hosts, never to
/// the CDN a large file redirects to.
///
/// Resolution blocks the calling thread; call it off the main thread or from a
/// detached task when that matters.
public struct ModelResolver: Sendable {
    /// Endpoint, token, cache and offline switch.
    public var environment: HubEnvironment
    /// Retry and timeout settings.
    public var options: HubDownloadOptions
    /// Receives download progress (on a background thread); nil is quiet.
    public var progress: (@Sendable (HubDownloadProgress) -> Void)?
    /// Names accepted in place of repository ids.
    public var aliases: RepositoryAliases

    /// A resolver for `environment`.
    /// - Parameters:
    ///   - environment: endpoint, token, cache and offline switch
    ///     (``HubEnvironment/current(userAgent:)`` for the process's).
    ///   - options: retry and timeout settings.
    ///   - progress: receives download progress (on a background thread); nil is quiet.
    ///   - aliases: names accepted in place of repository ids; none by default.
    public init(environment: HubEnvironment, options: HubDownloadOptions = HubDownloadOptions(),
                progress: (@Sendable (HubDownloadProgress) -> Void)? = nil, aliases: RepositoryAliases = .none) {
        self.environment = environment
        self.options = options
        self.progress = progress
        self.aliases = aliases
    }

    /// The cache this resolver reads and fills.
    public var cache: HubCache { HubCache(root: environment.cacheDirectory) }

    /// The repository `model` names: the alias's repository, or `model` itself if
    /// it is a valid `org/name` id.
    /// - Parameters:
    ///   - model: an alias or a repository id.
    ///   - aliases: the aliases accepted.
    /// - Returns: the repository id.
    /// - Throws: ``HubError/unknownModel(name:knownNames:)``.
    public static func repository(for model: String, aliases: RepositoryAliases = .none) throws -> String {
        if let repository = aliases.repository(for: model) { return repository }
        guard RepositoryPath.isRepositoryID(model) else { throw HubError.unknownModel(name: model, knownNames: aliases.names) }
        return model
    }

    /// The directory holding `files` of `model` at `revision` (see the type's overview
    /// for the order in which a directory, the cache and the hub are tried).
    ///
    /// - Parameters:
    ///   - model: a directory, an alias (``aliases``) or an `org/name` repository id.
    ///   - files: the files needed.
    ///   - revision: a branch, tag or commit hash.
    /// - Returns: the directory and where it came from.
    /// - Throws: ``HubError``.
    public func resolve(_ model: String, files: HubFileSet, revision: String = "main") throws -> ResolvedModel {
        let path = (model as NSString).expandingTildeInPath
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            let directory = URL(fileURLWithPath: path, isDirectory: true).standardizedFileURL
            let repository = HubCache.repository(ofSnapshot: directory)
            return ResolvedModel(directory: directory, repository: repository,
                                 commit: repository == nil ? nil : directory.lastPathComponent, source: .localDirectory)
        }
        let repository = try Self.repository(for: model, aliases: aliases)
        try RepositoryPath.validateFile(revision)
        let cache = self.cache
        if let snapshot = cache.completeSnapshot(repository, files: files, revision: revision) {
            return ResolvedModel(directory: snapshot.directory, repository: repository, commit: snapshot.commit, source: .cache)
        }
        if environment.offline {
            let placement = cache.placement(repository, files: files, revision: revision)
            throw HubError.offline(repository: repository, missingFiles: placement.missing, directory: placement.directory.path,
                                   reason: environment.offlineReason)
        }
        return try download(repository, files: files, revision: revision)
    }

    /// Downloads what the cache lacks of `files`, pinning every file to the commit
    /// the first one resolves to, and records `refs/<revision>` once all are in.
    private func download(_ repository: String, files: HubFileSet, revision: String) throws -> ResolvedModel {
        let downloader = HubDownloader(environment: environment, options: options, progress: progress)
        let cache = downloader.cache
        var commit: String? = RepositoryPath.isCommitHash(revision) ? revision : nil

        /// Fetches `file`; returns false for a 404 when `optional`.
        func fetch(_ file: String, optional: Bool) throws -> Bool {
            try RepositoryPath.validateFile(file)
            if let commit, HubFileSet.isFile(cache.snapshotDirectory(repository, commit: commit), file) { return true }
            if optional, let commit, cache.isRecordedMissing(repository, commit: commit, file: file) { return false }
            let metadata: HubFileMetadata
            do {
                metadata = try downloader.metadata(repository, file: file, revision: commit ?? revision)
            } catch HubError.fileNotFound(let repo, let name, let rev) {
                if optional {
                    if let commit { cache.recordMissing(repository, commit: commit, file: file) }
                    return false
                }
                throw HubError.fileNotFound(repository: repo, file: name, revision: rev)
            }
            let pinned = commit ?? metadata.commit
            commit = pinned
            if HubFileSet.isFile(cache.snapshotDirectory(repository, commit: pinned), file) { return true }
            try downloader.fetch(repository, file: file, commit: pinned, metadata: metadata)
            return true
        }

        for entry in files.entries {
            switch entry {
            case .required(let file):
                _ = try fetch(file, optional: false)
            case .optional(let file):
                _ = try fetch(file, optional: true)
            case .safetensors(let stem):
                let single = stem + ".safetensors", index = single + ".index.json"
                if try fetch(single, optional: true) { continue }
                guard try fetch(index, optional: true), let commit else {
                    throw HubError.fileNotFound(repository: repository, file: "\(single) (or \(index))", revision: revision)
                }
                for shard in try HubFileSet.shards(ofIndex: cache.snapshotDirectory(repository, commit: commit).appendingPathComponent(index)) {
                    _ = try fetch(shard, optional: false)
                }
            }
        }
        guard let commit else {
            throw HubError.fileNotFound(repository: repository, file: "(no files requested)", revision: revision)
        }
        try cache.setCommit(commit, repository: repository, revision: revision)
        return ResolvedModel(directory: cache.snapshotDirectory(repository, commit: commit), repository: repository,
                             commit: commit, source: .download)
    }
}
