import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the hub says about one file (from `HEAD /{repo}/resolve/{revision}/{file}`).
struct HubFileMetadata: Sendable, Equatable {
    /// `X-Repo-Commit`: the commit the revision resolved to.
    let commit: String
    /// `X-Linked-Etag` (LFS files: the SHA-256 of the contents), else `ETag` (the git blob SHA-1).
    let etag: String
    /// `X-Linked-Size`, else `Content-Length` of a non-redirect answer.
    let size: Int64?

    /// Whether ``etag`` is a SHA-256 (64 lowercase hex digits), i.e. the file is in LFS
    /// and its contents can be verified against it.
    var sha256: String? {
        etag.utf8.count == 64 && etag.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) } ? etag : nil
    }
}

/// Port of the cache-download path of `huggingface_hub/file_download.py`
/// (`_hf_hub_download_to_cache_dir`, `get_hf_file_metadata`, `http_get`): metadata
/// by HEAD, contents by GET into `blobs/<etag>.incomplete` with resume, checks of
/// size and SHA-256, then an atomic rename and a snapshot link.
struct HubDownloader {
    let environment: HubEnvironment
    let options: HubDownloadOptions
    let progress: (@Sendable (HubDownloadProgress) -> Void)?
    let cache: HubCache
    let http: HubHTTPClient

    init(environment: HubEnvironment, options: HubDownloadOptions, progress: (@Sendable (HubDownloadProgress) -> Void)?) {
        self.environment = environment
        self.options = options
        self.progress = progress
        cache = HubCache(root: environment.cacheDirectory)
        http = HubHTTPClient(userAgent: environment.userAgent, timeout: options.timeout)
    }

    // MARK: URLs and headers

    /// `{endpoint}/{repo}/resolve/{revision}/{file}`, the revision escaped whole
    /// (`refs/pr/1` → `refs%2Fpr%2F1`) and the file name per component.
    func resolveURL(_ repository: String, revision: String, file: String) -> URL {
        var base = environment.endpoint.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        let revisionPart = Self.escape(revision, keepSlash: false)
        let filePart = Self.escape(file, keepSlash: true)
        return URL(string: "\(base)/\(repository)/resolve/\(revisionPart)/\(filePart)")!
    }

    private static func escape(_ text: String, keepSlash: Bool) -> String {
        var allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
        if keepSlash { allowed.insert("/") }
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// `(scheme, host, port)` with the scheme's default port filled in.
    private static func origin(_ url: URL) -> String {
        let scheme = url.scheme?.lowercased() ?? ""
        let port = url.port ?? (scheme == "https" ? 443 : scheme == "http" ? 80 : 0)
        return "\(scheme)://\(url.host?.lowercased() ?? ""):\(port)"
    }

    /// Whether `url` is served by the configured endpoint or a known hub host: the
    /// only places the token may go.
    func isHubOrigin(_ url: URL) -> Bool {
        let hubs = [environment.endpoint, URL(string: "https://huggingface.co")!, URL(string: "https://hf.co")!]
        return hubs.map(Self.origin).contains(Self.origin(url))
    }

    /// Headers for a request to `url`: no compression (sizes must be the file's),
    /// and the token only for hub hosts.
    private func headers(for url: URL, authorized: Bool) -> [String: String] {
        var headers = ["Accept-Encoding": "identity"]
        if authorized, isHubOrigin(url), let token = environment.token { headers["Authorization"] = "Bearer \(token)" }
        return headers
    }

    // MARK: Metadata

    /// The hub's metadata for `file` at `revision`, from a HEAD request that
    /// follows redirects only while they stay on the hub and carry no metadata (the
    /// redirect of an LFS file to its CDN carries the metadata itself).
    /// - Throws: ``HubError`` (404 → ``HubError/fileNotFound(repository:file:revision:)``, …).
    func metadata(_ repository: String, file: String, revision: String) throws -> HubFileMetadata {
        var url = resolveURL(repository, revision: revision, file: file)
        for _ in 0...options.maxRedirects {
            let response = try retrying { try http.send("HEAD", url, headers: headers(for: url, authorized: true)) }
            // A redirect that carries the linked file's etag is the LFS redirect: its own headers
            // are the metadata. Others (a renamed repository) are followed while they stay on the hub.
            if response.isRedirect, response.header("x-linked-etag") == nil, let next = response.location,
               isHubOrigin(next) || Self.origin(next) == Self.origin(url) {
                url = next
                continue
            }
            guard response.isSuccess || response.isRedirect else {
                throw error(for: response, repository: repository, file: file, revision: revision)
            }
            guard let commit = response.header("x-repo-commit")?.trimmingCharacters(in: .whitespaces), !commit.isEmpty else {
                throw HubError.missingMetadata(url: url.absoluteString, header: "X-Repo-Commit")
            }
            guard let rawETag = response.header("x-linked-etag") ?? response.header("etag") else {
                throw HubError.missingMetadata(url: url.absoluteString, header: "ETag")
            }
            let etag = Self.normalizeETag(rawETag)
            guard RepositoryPath.isSafeComponent(commit) else {
                throw HubError.unsafeMetadata(url: url.absoluteString, header: "X-Repo-Commit", value: commit)
            }
            guard RepositoryPath.isSafeComponent(etag) else {
                throw HubError.unsafeMetadata(url: url.absoluteString, header: "ETag", value: rawETag)
            }
            let size = response.integer("x-linked-size") ?? (response.isRedirect ? nil : response.integer("content-length"))
            return HubFileMetadata(commit: commit, etag: etag, size: size)
        }
        throw HubError.tooManyRedirects(url: url.absoluteString)
    }

    /// `W/"abc"` or `"abc"` → `abc`.
    static func normalizeETag(_ value: String) -> String {
        var text = value.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("W/") { text.removeFirst(2) }
        return text.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }

    /// The typed error for an unsuccessful answer about `repository`'s `file`.
    func error(for response: HubHTTPResponse, repository: String, file: String, revision: String) -> HubError {
        let code = response.header("x-error-code")
        switch response.status {
        case 401, 403:
            if code == "GatedRepo" { return .gatedRepository(repository: repository, tokenProvided: environment.token != nil) }
            return environment.token == nil
                ? .tokenRequired(repository: repository, file: file, status: response.status)
                : .tokenRejected(repository: repository, file: file, status: response.status)
        case 404:
            if code == "RepoNotFound" { return .repositoryNotFound(repository: repository) }
            if code == "RevisionNotFound" { return .revisionNotFound(repository: repository, revision: revision) }
            return .fileNotFound(repository: repository, file: file, revision: revision)
        default:
            return .httpStatus(url: response.url.absoluteString, status: response.status, message: response.header("x-error-message"))
        }
    }

    /// Runs `body`, again after ``HubDownloadOptions/retryDelay`` while it fails
    /// transiently, at most ``HubDownloadOptions/maxRetries`` more times.
    private func retrying(_ body: () throws -> HubHTTPResponse) throws -> HubHTTPResponse {
        var failures = 0
        while true {
            do {
                let response = try body()
                let transient = HubError.httpStatus(url: "", status: response.status, message: nil).isTransient
                if transient && failures < options.maxRetries {
                    failures += 1
                    Thread.sleep(forTimeInterval: options.retryDelay)
                    continue
                }
                return response
            } catch let error as HubError where error.isTransient && failures < options.maxRetries {
                failures += 1
                Thread.sleep(forTimeInterval: options.retryDelay)
            }
        }
    }

    // MARK: Contents

    /// Makes `snapshots/<commit>/<file>` point at the blob `metadata` names,
    /// downloading the blob first unless the cache already holds it.
    func fetch(_ repository: String, file: String, commit: String, metadata: HubFileMetadata) throws {
        let blob = cache.blobURL(repository, etag: metadata.etag)
        if !Self.hasBlob(blob, size: metadata.size) {
            let lock = try HubFileLock(cache.lockURL(repository, etag: metadata.etag))
            defer { lock.release() }
            // Another process may have finished it while this one waited for the lock.
            if !Self.hasBlob(blob, size: metadata.size) {
                if FileManager.default.fileExists(atPath: blob.path) { unlink(blob.path) }
                try HubCache.createDirectory(blob.deletingLastPathComponent())
                try download(repository, file: file, commit: commit, metadata: metadata, to: blob)
            }
        }
        try cache.link(repository, commit: commit, file: file, etag: metadata.etag)
    }

    /// Whether `blob` is a regular file of `size` bytes (any size when unknown).
    private static func hasBlob(_ blob: URL, size: Int64?) -> Bool {
        var info = stat()
        guard stat(blob.path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
        return size.map { Int64(info.st_size) == $0 } ?? true
    }

    /// Downloads into `<blob>.incomplete` (resuming what an earlier attempt left),
    /// checks size and SHA-256 and renames the result to `blob`. A check that fails
    /// removes the partial file; a connection that fails after the retries keeps it
    /// for the next attempt to resume.
    private func download(_ repository: String, file: String, commit: String, metadata: HubFileMetadata, to blob: URL) throws {
        let partial = BlobWriter(path: blob.path + ".incomplete", verifySHA256: metadata.sha256 != nil, expectedSize: metadata.size,
                                 reporter: ProgressReporter(repository: repository, file: file, callback: progress))
        try partial.openFile()
        defer { partial.closeFile() }
        if let size = partial.expectedSize, partial.written > size { try partial.reset() }
        try partial.hashExistingContents()
        let url = resolveURL(repository, revision: commit, file: file)

        var failures = 0
        while partial.written != partial.expectedSize {
            let before = partial.written
            do {
                let result = try transfer(url, into: partial, repository: repository, file: file, revision: commit)
                if result == .restart {
                    failures += 1
                    if failures > options.maxRetries {
                        throw HubError.httpStatus(url: url.absoluteString, status: 416,
                                                  message: "the server does not serve byte ranges consistently")
                    }
                    continue
                }
                // A server may answer a range with less than the rest: ask for more while that moves on.
                if let size = partial.expectedSize, partial.written < size, partial.written > before { continue }
                break
            } catch let error as HubError where error.isTransient {
                failures = partial.written > before ? 0 : failures + 1
                if failures > options.maxRetries { throw error }
                Thread.sleep(forTimeInterval: options.retryDelay)
            } catch let error as HubError {
                if case .sizeMismatch = error { partial.discard() }
                throw error
            }
        }

        if let size = partial.expectedSize, partial.written != size {
            partial.discard()
            throw HubError.sizeMismatch(repository: repository, file: file, expected: size, actual: partial.written)
        }
        if let expected = metadata.sha256 {
            let actual = partial.digest()
            guard actual == expected else {
                partial.discard()
                throw HubError.checksumMismatch(repository: repository, file: file, expected: expected, actual: actual)
            }
        }
        partial.reporter.report(partial.written, total: partial.written, force: true)
        try partial.finish(as: blob.path)
    }

    /// How one GET ended.
    private enum TransferResult {
        /// The server sent its whole answer (which may still be shorter than the file).
        case complete
        /// The partial file was discarded (a range the server would not serve as asked);
        /// the next attempt starts over.
        case restart
    }

    /// One GET of `start` from `partial.written` on (a `Range` request when resuming),
    /// following redirects and dropping `Authorization` once they leave the hub.
    private func transfer(_ start: URL, into partial: BlobWriter, repository: String, file: String,
                          revision: String) throws -> TransferResult {
        var url = start
        var authorized = true
        let offset = partial.written

        /// Checks the status and size of a 2xx answer and readies the file for its body.
        func accept(_ response: HubHTTPResponse) throws -> Bool {
            guard response.isSuccess else { return false }
            if response.status == 206 {
                guard let range = ContentRange(response.header("content-range")), range.start == offset else {
                    try partial.reset()
                    throw RestartSignal()
                }
                if let total = range.total { try partial.announce(total, repository: repository, file: file) }
            } else {
                // 200: the whole file, even if a range was asked for (the server ignored it).
                if partial.written > 0 { try partial.reset() }
                let identity = (response.header("content-encoding") ?? "identity").lowercased() == "identity"
                if identity, let length = response.integer("content-length") {
                    try partial.announce(length, repository: repository, file: file)
                }
            }
            partial.reporter.report(partial.written, total: partial.expectedSize, force: true)
            return true
        }

        for _ in 0...options.maxRedirects {
            var headers = headers(for: url, authorized: authorized)
            if offset > 0 { headers["Range"] = "bytes=\(offset)-" }
            let response: HubHTTPResponse
            do {
                response = try http.send("GET", url, headers: headers, onResponse: accept, onData: { bytes in
                    try partial.append(bytes)
                    if let expected = partial.expectedSize, partial.written > expected {
                        throw HubError.sizeMismatch(repository: repository, file: file, expected: expected, actual: partial.written)
                    }
                    partial.reporter.report(partial.written, total: partial.expectedSize, force: false)
                })
            } catch is RestartSignal {
                return .restart
            }
            if response.isRedirect, let next = response.location {
                authorized = authorized && isHubOrigin(next)
                url = next
                continue
            }
            if response.status == 416 && offset > 0 {
                try partial.reset()
                return .restart
            }
            guard response.isSuccess else {
                throw error(for: response, repository: repository, file: file, revision: revision)
            }
            return .complete
        }
        throw HubError.tooManyRedirects(url: start.absoluteString)
    }
}

/// Thrown from a response handler to abandon a body that cannot be used.
private struct RestartSignal: Error {}

/// `Content-Range: bytes START-END/TOTAL` (`TOTAL` may be `*`).
private struct ContentRange {
    let start: Int64
    let total: Int64?

    init?(_ header: String?) {
        guard let header, header.lowercased().hasPrefix("bytes ") else { return nil }
        let spec = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
        let halves = spec.split(separator: "/", maxSplits: 1)
        guard halves.count == 2, let dash = halves[0].firstIndex(of: "-"), let start = Int64(halves[0][..<dash]) else { return nil }
        self.start = start
        total = Int64(halves[1])
    }
}

/// Calls the progress callback at most once per MiB, plus on demand.
private struct ProgressReporter {
    let repository: String
    let file: String
    let callback: (@Sendable (HubDownloadProgress) -> Void)?
    private var lastReported: Int64 = -1

    init(repository: String, file: String, callback: (@Sendable (HubDownloadProgress) -> Void)?) {
        self.repository = repository
        self.file = file
        self.callback = callback
    }

    mutating func report(_ done: Int64, total: Int64?, force: Bool) {
        guard let callback, force || done - lastReported >= 1 << 20 || done == total else { return }
        guard done != lastReported || force else { return }
        lastReported = done
        callback(HubDownloadProgress(repository: repository, file: file, completedBytes: done, totalBytes: total))
    }
}

/// The `.incomplete` file of one download, the running SHA-256 of its contents,
/// the size it should reach and its progress reports.
private final class BlobWriter {
    let path: String
    let verifySHA256: Bool
    private var descriptor: Int32 = -1
    private var hasher = SHA256()
    private(set) var written: Int64 = 0
    /// The file's size: from the hub's metadata, else the first answer that tells it.
    private(set) var expectedSize: Int64?
    var reporter: ProgressReporter

    init(path: String, verifySHA256: Bool, expectedSize: Int64?, reporter: ProgressReporter) {
        self.path = path
        self.verifySHA256 = verifySHA256
        self.expectedSize = expectedSize
        self.reporter = reporter
    }

    /// Takes `size` as the file's size, unless it contradicts the size already known.
    /// - Throws: ``HubError/sizeMismatch(repository:file:expected:actual:)``.
    func announce(_ size: Int64, repository: String, file: String) throws {
        if let expectedSize, expectedSize != size {
            throw HubError.sizeMismatch(repository: repository, file: file, expected: expectedSize, actual: size)
        }
        expectedSize = size
    }

    /// Opens (or creates) the file, positioned at its end.
    func openFile() throws {
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else { throw HubError.posix(path, "open") }
        let end = lseek(descriptor, 0, SEEK_END)
        guard end >= 0 else { throw HubError.posix(path, "lseek") }
        written = Int64(end)
    }

    /// Feeds the bytes already in the file (from an earlier run) to the hasher.
    func hashExistingContents() throws {
        guard verifySHA256, written > 0 else { return }
        hasher = SHA256()
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        var offset: Int64 = 0
        while offset < written {
            let n = pread(descriptor, buffer.baseAddress!, min(chunk, Int(written - offset)), off_t(offset))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw HubError.posix(path, "read") }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            offset += Int64(n)
        }
    }

    /// Appends `bytes` to the file and the hash.
    func append(_ bytes: UnsafeRawBufferPointer) throws {
        try writeAll(bytes, to: descriptor, path: path)
        if verifySHA256 { hasher.update(bytes) }
        written += Int64(bytes.count)
    }

    /// Empties the file and the hash.
    func reset() throws {
        guard ftruncate(descriptor, 0) == 0, lseek(descriptor, 0, SEEK_SET) == 0 else { throw HubError.posix(path, "truncate") }
        hasher = SHA256()
        written = 0
    }

    /// The SHA-256 of everything written, as lowercase hex.
    func digest() -> String {
        hasher.finalize().map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// Flushes, closes and renames the file to `destination`.
    func finish(as destination: String) throws {
        guard fsync(descriptor) == 0 else { throw HubError.posix(path, "fsync") }
        closeFile()
        guard rename(path, destination) == 0 else { throw HubError.posix(destination, "rename") }
    }

    /// Closes and deletes the file.
    func discard() {
        closeFile()
        unlink(path)
    }

    /// Closes the file (idempotent).
    func closeFile() {
        if descriptor >= 0 { _ = close(descriptor) }
        descriptor = -1
    }
}
