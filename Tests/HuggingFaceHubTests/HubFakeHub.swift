import Foundation
import HuggingFaceHub

/// An imitation of the Hugging Face hub's `resolve` endpoint on loopback, with a
/// second server standing in for the CDN that LFS files redirect to.
///
/// `HEAD`/`GET /{repo}/resolve/{main|commit}/{file}` answers as the hub does:
/// small files directly (200, `ETag` = a git-style SHA-1, `X-Repo-Commit`), LFS
/// files with a 302 to the CDN carrying `X-Linked-Etag` (the SHA-256),
/// `X-Linked-Size` and `X-Repo-Commit`; errors with the hub's `X-Error-Code`.
/// Both servers honour `Range`.
final class FakeHub: @unchecked Sendable {
    /// One file in the repository.
    struct File {
        /// The contents.
        var content: [UInt8]
        /// Stored in LFS (served through the CDN redirect).
        var lfs: Bool
    }

    /// How the fake misbehaves.
    struct Behaviour {
        /// Requests need `Authorization: Bearer <token>`.
        var requiredToken: String?
        /// The first content GET of these files is cut after this many body bytes.
        var cutFirstDownload: [String: Int] = [:]
        /// Every content GET of these files is cut after this many body bytes.
        var cutEveryDownload: [String: Int] = [:]
        /// Answer `Range` requests with the whole file (200).
        var ignoreRange = false
        /// Serve these files' contents with one byte changed (announced SHA-256 unchanged).
        var corrupt: Set<String> = []
        /// Announce these sizes instead of the real ones.
        var announcedSize: [String: Int] = [:]
        /// Redirect LFS files to a second path on the hub itself rather than to the CDN.
        var lfsOnSameHost = false
        /// Answer content GETs with a `Range` header with this status (e.g. 503).
        var rangeStatus: Int?
        /// A former name of the repository: its URLs answer 307 with a relative
        /// `Location` on the current name, as the hub does for renamed repositories.
        var formerName: String?
    }

    let repository: String
    let commit = "0123456789abcdef0123456789abcdef01234567"
    let files: [String: File]
    private let etags: [String: String]
    private var currentBehaviour: Behaviour
    private(set) var hub: HubTestServer!
    private(set) var cdn: HubTestServer!
    private let lock = NSLock()
    private var cutsDone: Set<String> = []

    /// Starts both servers.
    init(repository: String = "test-org/test-model", files: [String: File], behaviour: Behaviour = Behaviour()) throws {
        self.repository = repository
        self.files = files
        etags = files.mapValues(Self.etag)
        currentBehaviour = behaviour
        hub = try HubTestServer { [unowned self] in self.answerHub($0) }
        cdn = try HubTestServer { [unowned self] in self.answerCDN($0) }
    }

    /// How the fake misbehaves; may be changed between requests.
    var behaviour: Behaviour {
        get {
            lock.lock()
            defer { lock.unlock() }
            return currentBehaviour
        }
        set {
            lock.lock()
            currentBehaviour = newValue
            lock.unlock()
        }
    }

    /// Stops both servers.
    func stop() {
        hub.stop()
        cdn.stop()
    }

    /// The hub's base URL.
    var endpoint: URL { hub.baseURL }

    /// An environment pointing at this fake, with `cache` as the cache root.
    func environment(cache: URL, token: String? = nil, offline: Bool = false) -> HubEnvironment {
        HubEnvironment(endpoint: endpoint, token: token, cacheDirectory: cache, offline: offline)
    }

    /// The etag the hub announces for `name`: the SHA-256 for LFS files, a
    /// 40-digit stand-in for the git SHA-1 otherwise.
    func etag(_ name: String) -> String { etags[name]! }

    private static func etag(_ file: File) -> String {
        let digest = SHA256.hexDigest(file.content)
        return file.lfs ? digest : String(digest.prefix(40))
    }

    // MARK: Hub

    private func answerHub(_ request: HubTestRequest) -> HubTestResponse {
        let behaviour = self.behaviour
        let path = request.path.removingPercentEncoding ?? request.path
        if path.hasPrefix("/lfs-second-path/") { return answerCDN(request) }
        if let former = behaviour.formerName, path.hasPrefix("/\(former)/") {
            return HubTestResponse(status: 307, headers: [("Location", "/\(repository)/" + path.dropFirst(former.count + 2))])
        }
        let prefix = "/\(repository)/resolve/"
        guard path.hasPrefix(prefix) else {
            return HubTestResponse(status: 404, headers: [("X-Error-Code", "RepoNotFound")])
        }
        if let token = behaviour.requiredToken {
            switch request.header("authorization") {
            case "Bearer \(token)": break
            case nil: return HubTestResponse(status: 401, headers: [("X-Error-Message", "Access to this resource requires a token.")])
            default: return HubTestResponse(status: 401, headers: [("X-Error-Message", "Invalid credentials in Authorization header")])
            }
        }
        let rest = path.dropFirst(prefix.count)
        guard let slash = rest.firstIndex(of: "/") else { return HubTestResponse(status: 404) }
        let revision = String(rest[..<slash]), name = String(rest[rest.index(after: slash)...])
        guard revision == "main" || revision == commit else {
            return HubTestResponse(status: 404, headers: [("X-Error-Code", "RevisionNotFound")])
        }
        guard let file = files[name] else {
            return HubTestResponse(status: 404, headers: [("X-Error-Code", "EntryNotFound"), ("X-Repo-Commit", commit)])
        }
        let size = behaviour.announcedSize[name] ?? file.content.count
        if file.lfs {
            let location = behaviour.lfsOnSameHost
                ? "/lfs-second-path/\(etag(name))"
                : cdn.baseURL.absoluteString + "/cdn/\(etag(name))?signature=xyz"
            return HubTestResponse(status: 302, headers: [
                ("Location", location), ("X-Repo-Commit", commit), ("X-Linked-Etag", "\"\(etag(name))\""),
                ("X-Linked-Size", String(size)), ("ETag", "W/\"not-the-content-hash\""),
            ], body: Array("Found. Redirecting to \(location)".utf8))
        }
        return serve(name, request, headers: [("X-Repo-Commit", commit), ("ETag", "\"\(etag(name))\"")], announcedSize: size)
    }

    // MARK: CDN

    private func answerCDN(_ request: HubTestRequest) -> HubTestResponse {
        let component = request.path.split(separator: "?")[0].split(separator: "/").last.map(String.init) ?? ""
        guard let name = files.keys.first(where: { files[$0]!.lfs && etag($0) == component }) else {
            return HubTestResponse(status: 403)
        }
        return serve(name, request, headers: [], announcedSize: nil)
    }

    /// The contents of `name` (whole, or the requested range), cut or corrupted as configured.
    private func serve(_ name: String, _ request: HubTestRequest, headers: [(String, String)], announcedSize: Int?) -> HubTestResponse {
        let behaviour = self.behaviour
        var content = files[name]!.content
        if request.method == "GET", request.header("range") != nil, let status = behaviour.rangeStatus {
            return HubTestResponse(status: status)
        }
        if behaviour.corrupt.contains(name), !content.isEmpty { content[content.count / 2] ^= 0xff }
        var response = HubTestResponse(status: 200, headers: headers)
        var body = content
        if request.method == "GET", !behaviour.ignoreRange, let range = request.header("range"), range.hasPrefix("bytes="),
           let start = Int(range.dropFirst(6).split(separator: "-")[0]) {
            guard start < content.count else { return HubTestResponse(status: 416, headers: [("Content-Range", "bytes */\(content.count)")]) }
            body = Array(content[start...])
            response.status = 206
            response.headers.append(("Content-Range", "bytes \(start)-\(content.count - 1)/\(content.count)"))
        }
        response.body = body
        if request.method == "HEAD", let announcedSize {
            response.headers.append(("Content-Length", String(announcedSize)))
        }
        if request.method == "GET" {
            lock.lock()
            if let cut = behaviour.cutEveryDownload[name] {
                response.cutAfter = cut
            } else if let cut = behaviour.cutFirstDownload[name], !cutsDone.contains(name) {
                cutsDone.insert(name)
                response.cutAfter = cut
            }
            lock.unlock()
        }
        return response
    }

    // MARK: Logs

    /// Requests the hub server received.
    var hubRequests: [HubTestRequest] { hub.requests }
    /// Requests the CDN server received.
    var cdnRequests: [HubTestRequest] { cdn.requests }
    /// Content GETs (hub or CDN) that delivered `name`'s bytes.
    func contentRequests(_ name: String) -> [HubTestRequest] {
        let etag = etag(name)
        return (hubRequests + cdnRequests).filter {
            $0.method == "GET" && ($0.path.hasSuffix("/\(name)") || $0.path.contains("/\(etag)")) && !(files[name]!.lfs && $0.path.contains("/resolve/"))
        }
    }
}

/// Deterministic pseudo-random bytes.
func hubTestBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return UInt8(truncatingIfNeeded: state)
    }
}
