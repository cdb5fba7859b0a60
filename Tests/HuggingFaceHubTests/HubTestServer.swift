import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A request as the loopback server saw it.
struct HubTestRequest: Sendable {
    /// `GET`, `HEAD`, …
    let method: String
    /// The request target (path and query).
    let path: String
    /// Headers, keys lowercased.
    let headers: [String: String]

    /// The value of header `name` (any case).
    func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// What the loopback server answers.
struct HubTestResponse: Sendable {
    /// The status code.
    var status: Int
    /// Headers in order (`Content-Length` is added from the body unless given).
    var headers: [(String, String)] = []
    /// The body (not sent for HEAD).
    var body: [UInt8] = []
    /// Close the connection after this many body bytes (a cut transfer).
    var cutAfter: Int? = nil
}

/// A minimal HTTP/1.1 server over POSIX sockets on 127.0.0.1 and an ephemeral
/// port, for tests: one request per connection (`Connection: close`), each on its
/// own thread, every request logged. ``stop()`` closes it and waits for its threads.
final class HubTestServer: @unchecked Sendable {
    /// The port it listens on.
    let port: UInt16
    private let listener: Int32
    private let handler: @Sendable (HubTestRequest) -> HubTestResponse
    private let lock = NSLock()
    private var stopping = false
    private var log: [HubTestRequest] = []
    private let connections = DispatchGroup()
    private let acceptLoopDone = DispatchSemaphore(value: 0)

    /// Starts listening; `handler` answers each request.
    init(handler: @escaping @Sendable (HubTestRequest) -> HubTestResponse) throws {
        self.handler = handler
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    /// `http://127.0.0.1:<port>`.
    var baseURL: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// Every request so far, in arrival order.
    var requests: [HubTestRequest] {
        lock.lock()
        defer { lock.unlock() }
        return log
    }

    /// Stops accepting, closes the listener and waits (a few seconds at most) for
    /// open connections to finish. Idempotent.
    func stop() {
        lock.lock()
        let already = stopping
        stopping = true
        lock.unlock()
        guard !already else { return }
        acceptLoopDone.wait()
        close(listener)
        _ = connections.wait(timeout: .now() + 5)
    }

    private var isStopping: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopping
    }

    private func acceptLoop() {
        defer { acceptLoopDone.signal() }
        while !isStopping {
            var descriptor = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 20) > 0 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            connections.enter()
            Thread { [self] in
                serve(connection)
                connections.leave()
            }.start()
        }
    }

    private func serve(_ connection: Int32) {
        defer { close(connection) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let request = readRequest(connection) else { return }
        lock.lock()
        log.append(request)
        lock.unlock()
        let response = handler(request)

        var head = "HTTP/1.1 \(response.status) \(Self.reason(response.status))\r\n"
        var hasLength = false
        for (name, value) in response.headers {
            head += "\(name): \(value)\r\n"
            if name.lowercased() == "content-length" { hasLength = true }
        }
        if !hasLength { head += "Content-Length: \(response.body.count)\r\n" }
        head += "Connection: close\r\n\r\n"
        guard sendAll(connection, Array(head.utf8)) else { return }
        guard request.method != "HEAD" else { return }
        let count = min(response.cutAfter ?? response.body.count, response.body.count)
        _ = sendAll(connection, Array(response.body[0..<count]))
    }

    private func readRequest(_ connection: Int32) -> HubTestRequest? {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let terminator: [UInt8] = [13, 10, 13, 10]
        while data.count < 65536 {
            let n = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            data += buffer[0..<n]
            if data.count >= 4, (0...(data.count - 4)).contains(where: { Array(data[$0..<($0 + 4)]) == terminator }) { break }
        }
        guard let text = String(bytes: data, encoding: .utf8) else { return nil }
        let lines = text.components(separatedBy: "\r\n")
        let requestLine = lines[0].split(separator: " ")
        guard requestLine.count >= 2 else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return HubTestRequest(method: String(requestLine[0]), path: String(requestLine[1]), headers: headers)
    }

    private func sendAll(_ connection: Int32, _ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            #if canImport(Glibc)
            let flags = Int32(MSG_NOSIGNAL)
            #else
            let flags: Int32 = 0
            #endif
            let n = bytes.withUnsafeBytes { send(connection, $0.baseAddress! + done, bytes.count - done, flags) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }

    private static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 206: "Partial Content"
        case 302: "Found"
        case 307: "Temporary Redirect"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 416: "Range Not Satisfiable"
        default: "Status"
        }
    }
}
