import Foundation

/// Why a model could not be resolved, found in the cache or downloaded from the
/// Hugging Face hub.
///
/// Every case names what it concerns (repository, file, URL or path), and
/// ``description`` reads as a sentence a command-line user can act on.
public enum HubError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    /// `name` is not an existing directory, a known alias or an `org/name` repository id;
    /// `knownNames` are the aliases the resolver accepts (``RepositoryAliases/names``).
    case unknownModel(name: String, knownNames: [String])
    /// `endpoint` (from `HF_ENDPOINT`) is not an `http` or `https` URL.
    case invalidEndpoint(String)
    /// A file name or revision that would leave the cache directory (`..`, an absolute path).
    case invalidName(String)
    /// The hub answered 401/403 to a request without a token: the repository is
    /// private or gated (or does not exist).
    case tokenRequired(repository: String, file: String, status: Int)
    /// The hub answered 401/403 to a request with a token: the token is invalid or
    /// has no access to the repository.
    case tokenRejected(repository: String, file: String, status: Int)
    /// The repository is gated: its conditions must be accepted on the hub's web
    /// page, and a token of that account used.
    case gatedRepository(repository: String, tokenProvided: Bool)
    /// The hub has no such repository.
    case repositoryNotFound(repository: String)
    /// The repository has no such branch, tag or commit.
    case revisionNotFound(repository: String, revision: String)
    /// The repository has no such file at that revision.
    case fileNotFound(repository: String, file: String, revision: String)
    /// Any other unsuccessful HTTP status; `message` is the hub's `X-Error-Message`.
    case httpStatus(url: String, status: Int, message: String?)
    /// The connection failed (DNS, TLS, refused, reset, timed out) and retries did not help.
    case network(url: String, reason: String)
    /// More than the allowed number of redirects.
    case tooManyRedirects(url: String)
    /// A response lacked a header the hub always sends (`X-Repo-Commit`, `ETag`):
    /// the endpoint is probably not a Hugging Face hub.
    case missingMetadata(url: String, header: String)
    /// A header value cannot be used as a cache file name.
    case unsafeMetadata(url: String, header: String, value: String)
    /// A downloaded file's size differs from the size the hub announced.
    case sizeMismatch(repository: String, file: String, expected: Int64, actual: Int64)
    /// A downloaded file's SHA-256 differs from the hub's (LFS files only).
    case checksumMismatch(repository: String, file: String, expected: String, actual: String)
    /// A `*.safetensors.index.json` could not be read.
    case invalidIndex(file: String, reason: String)
    /// Offline (``HubEnvironment/offline``; `reason` is what turned it on,
    /// ``HubEnvironment/offlineReason``) and the cache lacks files: which, and
    /// the directory they belong in.
    case offline(repository: String, missingFiles: [String], directory: String, reason: String)
    /// A file-system operation in the cache failed.
    case fileSystem(path: String, operation: String, reason: String)

    /// A readable explanation.
    public var description: String {
        switch self {
        case let .unknownModel(name, knownNames) where knownNames.isEmpty:
            return "'\(name)' is not an existing directory or a Hugging Face repository id (org/name)"
        case let .unknownModel(name, knownNames):
            return "'\(name)' is not an existing directory, a Hugging Face repository id (org/name) or a known model name ("
                + knownNames.joined(separator: ", ") + ")"
        case let .invalidEndpoint(value):
            return "HF_ENDPOINT '\(value)' is not an http or https URL"
        case let .invalidName(name):
            return "'\(name)' is not a valid file name or revision inside a repository"
        case let .tokenRequired(repository, file, status):
            return "the hub refused \(repository)/\(file) (HTTP \(status)): the repository is private or gated, or does not exist; "
                + "set HF_TOKEN to a token with access to it"
        case let .tokenRejected(repository, file, status):
            return "the hub refused \(repository)/\(file) (HTTP \(status)) with the token given: the token is invalid "
                + "or has no access to this repository (check HF_TOKEN)"
        case let .gatedRepository(repository, tokenProvided):
            return "\(repository) is a gated repository: accept its conditions on \(repository)'s hub page"
                + (tokenProvided ? " with the account the token (HF_TOKEN) belongs to" : " and set HF_TOKEN to a token of that account")
        case let .repositoryNotFound(repository):
            return "repository \(repository) not found on the hub (if it is private, set HF_TOKEN)"
        case let .revisionNotFound(repository, revision):
            return "repository \(repository) has no revision '\(revision)'"
        case let .fileNotFound(repository, file, revision):
            return "repository \(repository) has no file '\(file)' at revision '\(revision)'"
        case let .httpStatus(url, status, message):
            return "HTTP \(status) from \(url)" + (message.map { ": \($0)" } ?? "")
        case let .network(url, reason):
            return "cannot reach \(url): \(reason) (set HF_HUB_OFFLINE=1 to use only the local cache)"
        case let .tooManyRedirects(url):
            return "too many redirects from \(url)"
        case let .missingMetadata(url, header):
            return "the response from \(url) has no '\(header)' header, so it does not come from a Hugging Face hub; "
                + "check HF_ENDPOINT and any proxy"
        case let .unsafeMetadata(url, header, value):
            return "the response from \(url) has an unusable '\(header)' header: '\(value)'"
        case let .sizeMismatch(repository, file, expected, actual):
            return "\(repository)/\(file): downloaded \(actual) bytes, the hub announced \(expected); nothing was kept"
        case let .checksumMismatch(repository, file, expected, actual):
            return "\(repository)/\(file): SHA-256 \(actual) does not match the hub's \(expected); nothing was kept"
        case let .invalidIndex(file, reason):
            return "cannot read the weight index \(file): \(reason)"
        case let .offline(repository, missingFiles, directory, reason):
            return "offline (\(reason)) and the cache lacks \(repository)'s "
                + missingFiles.joined(separator: ", ")
                + "; put them in \(directory), or pass a directory that holds the model's files"
        case let .fileSystem(path, operation, reason):
            return "\(operation) \(path): \(reason)"
        }
    }

    /// The same text as ``description``.
    public var errorDescription: String? { description }

    /// Whether retrying the same request may succeed (connection problems, 5xx,
    /// 408, 429).
    var isTransient: Bool {
        switch self {
        case .network: return true
        case let .httpStatus(_, status, _): return status >= 500 || status == 408 || status == 429
        default: return false
        }
    }

    /// A ``fileSystem(path:operation:reason:)`` for the current `errno`.
    static func posix(_ path: String, _ operation: String, _ code: Int32 = errno) -> HubError {
        .fileSystem(path: path, operation: operation, reason: String(cString: strerror(code)))
    }
}
