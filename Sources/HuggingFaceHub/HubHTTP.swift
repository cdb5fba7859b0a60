import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The status and headers of one HTTP response (the body goes to the caller's sink).
struct HubHTTPResponse: Sendable {
    /// The URL requested.
    let url: URL
    /// The status code.
    let status: Int
    /// Headers, keys lowercased.
    let headers: [String: String]

    /// The value of header `name` (any case).
    func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// `Location`, resolved against the request URL.
    var location: URL? {
        header("location").flatMap { URL(string: $0, relativeTo: url)?.absoluteURL }
    }

    /// Whether this is a redirect with a usable `Location`.
    var isRedirect: Bool { [301, 302, 303, 307, 308].contains(status) && location != nil }

    /// Whether the status is 2xx.
    var isSuccess: Bool { (200..<300).contains(status) }

    /// An integer header.
    func integer(_ name: String) -> Int64? {
        header(name).flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) }
    }
}

/// Blocking HTTP requests over URLSession that never follow redirects by
/// themselves (the caller decides, and drops `Authorization` when leaving the hub)
/// and stream response bodies to a sink.
struct HubHTTPClient: Sendable {
    /// Sent as `User-Agent`.
    let userAgent: String
    /// Idle timeout in seconds: a request fails when no data arrives for this long.
    let timeout: TimeInterval

    /// Sends `method` to `url` with `headers` and waits for the response.
    ///
    /// `onResponse` sees the status and headers first and returns whether the body
    /// is wanted; if so, `onData` receives it chunk by chunk. An error either throws
    /// cancels the transfer and is rethrown.
    /// - Throws: ``HubError/network(url:reason:)`` when the transfer fails (including
    ///   a connection closed before the announced length), or what the closures throw.
    func send(_ method: String, _ url: URL, headers: [String: String],
              onResponse: @escaping (HubHTTPResponse) throws -> Bool = { _ in false },
              onData: @escaping (UnsafeRawBufferPointer) throws -> Void = { _ in }) throws -> HubHTTPResponse {
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalAndRemoteCacheData, timeoutInterval: timeout)
        request.httpMethod = method
        request.httpShouldHandleCookies = false
        request.setValue(userAgent, forHTTPHeaderField: "User-Agent")
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }

        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.urlCache = nil
        configuration.httpCookieStorage = nil
        configuration.httpShouldSetCookies = false
        configuration.requestCachePolicy = .reloadIgnoringLocalAndRemoteCacheData

        let transfer = HubHTTPTransfer(onResponse: onResponse, onData: onData)
        let session = URLSession(configuration: configuration, delegate: transfer, delegateQueue: nil)
        session.dataTask(with: request).resume()
        transfer.finished.wait()
        session.finishTasksAndInvalidate()

        if let error = transfer.callerError { throw error }
        if let error = transfer.transportError {
            throw HubError.network(url: url.absoluteString, reason: Self.reason(error))
        }
        guard let response = transfer.response else {
            throw HubError.network(url: url.absoluteString, reason: "no response")
        }
        return response
    }

    /// A short reason for a transport error.
    private static func reason(_ error: Error) -> String {
        let error = error as NSError
        if let text = error.userInfo[NSLocalizedDescriptionKey] as? String, !text.isEmpty { return text }
        return error.localizedDescription
    }
}

/// One transfer's delegate. URLSession calls it on its own serial queue; the
/// requesting thread reads the results only after ``finished`` is signalled.
private final class HubHTTPTransfer: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let finished = DispatchSemaphore(value: 0)
    private let onResponse: (HubHTTPResponse) throws -> Bool
    private let onData: (UnsafeRawBufferPointer) throws -> Void
    private(set) var response: HubHTTPResponse?
    private(set) var callerError: Error?
    private(set) var transportError: Error?
    private var wantsBody = false

    init(onResponse: @escaping (HubHTTPResponse) throws -> Bool, onData: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        self.onResponse = onResponse
        self.onData = onData
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
        completionHandler(nil)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void) {
        guard let http = response as? HTTPURLResponse else {
            callerError = HubError.network(url: response.url?.absoluteString ?? "", reason: "not an HTTP response")
            completionHandler(.cancel)
            return
        }
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields {
            if let key = key as? String, let value = value as? String { headers[key.lowercased()] = value }
        }
        let received = HubHTTPResponse(url: dataTask.originalRequest?.url ?? http.url ?? URL(fileURLWithPath: "/"),
                                       status: http.statusCode, headers: headers)
        self.response = received
        do {
            wantsBody = try onResponse(received)
            completionHandler(.allow)
        } catch {
            callerError = error
            completionHandler(.cancel)
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard wantsBody, callerError == nil else { return }
        do {
            try data.withUnsafeBytes { try onData($0) }
        } catch {
            callerError = error
            dataTask.cancel()
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if callerError == nil { transportError = error }
        finished.signal()
    }
}
