import Foundation

/// Where and how to reach the Hugging Face hub, and where its cache lives.
///
/// ``current(userAgent:)`` reads the same environment variables as `huggingface_hub`
/// (`HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_CACHE`, `HF_HOME`, `HF_HUB_OFFLINE`, …), so
/// a Swift program and the Python tools share one cache. Tests build a value
/// by hand, or from a dictionary with ``init(variables:userAgent:)``, and never touch the
/// real hub or the user's cache.
public struct HubEnvironment: Sendable, Equatable {
    /// `https://huggingface.co`.
    public static let defaultEndpoint = URL(string: "https://huggingface.co")!

    /// `swift-huggingface-hub`: the `User-Agent` sent unless an application names itself.
    public static let defaultUserAgent = "swift-huggingface-hub"

    /// The hub's base URL (`HF_ENDPOINT`); files are at `{endpoint}/{repo}/resolve/{revision}/{file}`.
    public var endpoint: URL
    /// Sent as `Authorization: Bearer …` to the hub (never to other hosts).
    public var token: String?
    /// The cache root, holding `models--ORG--NAME/{blobs,snapshots,refs}`.
    public var cacheDirectory: URL
    /// No network at all: only local directories and the cache.
    public var offline: Bool
    /// What turned ``offline`` on, as errors name it: the variable that
    /// ``init(variables:userAgent:)`` read (`HF_HUB_OFFLINE=1`), or what an
    /// application sets (the `interrogate` command: `--offline`).
    public var offlineReason = "offline mode"
    /// The `User-Agent` header.
    public var userAgent: String

    /// Explicit settings.
    ///
    /// - Parameters:
    ///   - endpoint: the hub's base URL (``defaultEndpoint`` unless a mirror is used).
    ///   - token: an access token for private or gated repositories, or nil.
    ///   - cacheDirectory: the cache root (what `HF_HUB_CACHE` names).
    ///   - offline: true to use only local directories and the cache.
    ///   - userAgent: the `User-Agent` header, naming the application.
    public init(endpoint: URL = HubEnvironment.defaultEndpoint, token: String? = nil, cacheDirectory: URL,
                offline: Bool = false, userAgent: String = HubEnvironment.defaultUserAgent) {
        self.endpoint = endpoint
        self.token = token
        self.cacheDirectory = cacheDirectory
        self.offline = offline
        self.userAgent = userAgent
    }

    /// Settings from environment variables, as `huggingface_hub` reads them:
    ///
    /// - endpoint: `HF_ENDPOINT`, else `https://huggingface.co`;
    /// - token: `HF_TOKEN`, else `HUGGING_FACE_HUB_TOKEN`, else the file at
    ///   `HF_TOKEN_PATH` or `$HF_HOME/token` (written by `hf auth login`);
    /// - cache: `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`,
    ///   where `HF_HOME` defaults to `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`;
    /// - offline: `HF_HUB_OFFLINE` or `TRANSFORMERS_OFFLINE` is `1`, `ON`, `YES` or `TRUE`.
    ///
    /// - Parameters:
    ///   - variables: the environment (`ProcessInfo.processInfo.environment`
    ///     for the real one); `HOME` in it expands `~`.
    ///   - userAgent: the `User-Agent` header, naming the application.
    /// - Throws: ``HubError/invalidEndpoint(_:)`` if `HF_ENDPOINT` is not an http(s) URL.
    public init(variables: [String: String], userAgent: String = HubEnvironment.defaultUserAgent) throws {
        func value(_ name: String) -> String? {
            guard let text = variables[name], !text.isEmpty else { return nil }
            return text
        }
        let home = value("HOME") ?? NSHomeDirectory()
        func expand(_ path: String) -> String {
            if path == "~" { return home }
            if path.hasPrefix("~/") { return home + path.dropFirst() }
            return path
        }
        let hfHome = expand(value("HF_HOME") ?? ((value("XDG_CACHE_HOME").map(expand) ?? home + "/.cache") + "/huggingface"))
        let cache = expand(value("HF_HUB_CACHE") ?? value("HUGGINGFACE_HUB_CACHE") ?? hfHome + "/hub")

        var endpoint = Self.defaultEndpoint
        if let text = value("HF_ENDPOINT") {
            var trimmed = text
            while trimmed.hasSuffix("/") { trimmed.removeLast() }
            guard let url = URL(string: trimmed), let scheme = url.scheme?.lowercased(),
                  scheme == "http" || scheme == "https", url.host != nil else {
                throw HubError.invalidEndpoint(text)
            }
            endpoint = url
        }

        var token = value("HF_TOKEN") ?? value("HUGGING_FACE_HUB_TOKEN")
        if token == nil {
            let tokenPath = expand(value("HF_TOKEN_PATH") ?? hfHome + "/token")
            if let data = FileManager.default.contents(atPath: tokenPath), let text = String(data: data, encoding: .utf8) {
                token = text
            }
        }
        token = token?.trimmingCharacters(in: .whitespacesAndNewlines)
        if token?.isEmpty == true { token = nil }

        let truthy: Set<String> = ["1", "ON", "YES", "TRUE"]
        let offlineVariable = value("HF_HUB_OFFLINE") != nil ? "HF_HUB_OFFLINE" : "TRANSFORMERS_OFFLINE"
        let offlineValue = value(offlineVariable)
        let offline = offlineValue.map { truthy.contains($0.uppercased()) } ?? false

        self.init(endpoint: endpoint, token: token, cacheDirectory: URL(fileURLWithPath: cache, isDirectory: true),
                  offline: offline, userAgent: userAgent)
        if let offlineValue { offlineReason = "\(offlineVariable)=\(offlineValue)" }
    }

    /// Settings from this process's environment (see ``init(variables:userAgent:)``).
    /// - Parameter userAgent: the `User-Agent` header, naming the application.
    /// - Returns: the settings the process's environment variables describe.
    /// - Throws: ``HubError/invalidEndpoint(_:)`` if `HF_ENDPOINT` is not an http(s) URL.
    public static func current(userAgent: String = HubEnvironment.defaultUserAgent) throws -> HubEnvironment {
        try HubEnvironment(variables: ProcessInfo.processInfo.environment, userAgent: userAgent)
    }
}
