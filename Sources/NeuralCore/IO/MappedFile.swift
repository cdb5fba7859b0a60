import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory. Tensors that view it keep it alive;
/// the mapping is released when the last of them goes away.
public final class MappedFile: @unchecked Sendable {
    // Sendable: the mapping is read-only and immutable after init.

    /// The mapped file's path.
    public let path: String
    /// The first byte of the mapping (nil for an empty file).
    public let bytes: UnsafeRawPointer?
    /// The file's size in bytes.
    public let count: Int

    /// Maps the file at `path`.
    /// - Throws: ``FileError`` when the file cannot be opened, stat'ed or mapped.
    public init(path: String) throws {
        self.path = path
        let fd = try openRegularFile(path)
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError(path: path, operation: "stat", code: errno) }
        count = Int(info.st_size)
        if count == 0 {
            bytes = nil
            return
        }
        let address = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let address, address != MAP_FAILED else { throw FileError(path: path, operation: "mmap", code: errno) }
        bytes = UnsafeRawPointer(address)
    }

    deinit {
        if let bytes { munmap(UnsafeMutableRawPointer(mutating: bytes), count) }
    }
}

/// A failed system call on a file, with the path and the C library's message.
public struct FileError: Error, CustomStringConvertible, Sendable {
    /// The file concerned.
    public let path: String
    /// The operation that failed (`open`, `mmap`, `write`, `rename`, …).
    public let operation: String
    /// The `errno` value.
    public let code: Int32
    /// What went wrong when it is not the C library's message for `code`.
    public let reason: String?

    /// Creates an error for `operation` on `path` that failed with `code`
    /// (described by `reason`, or by the C library's message when nil).
    public init(path: String, operation: String, code: Int32, reason: String? = nil) {
        self.path = path
        self.operation = operation
        self.code = code
        self.reason = reason
    }

    /// `"<operation> <path>: <reason or strerror>"`.
    public var description: String {
        "\(operation) \(path): \(reason ?? String(cString: strerror(code)))"
    }
}

extension FileError: LocalizedError {
    /// The same text as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}

/// The largest tokenizer file, label list or other text file the library reads
/// whole (256 MiB; real ones are a few MB).
public let maximumTextFileBytes = 256 << 20

/// Opens `path` for reading if it is a regular file. It is opened without
/// blocking, so a FIFO or a device is refused instead of waiting for a writer
/// or reading without end.
/// - Returns: the file descriptor (the caller closes it).
/// - Throws: ``FileError``; for anything but a regular file with code `EINVAL`
///   and a reason naming what it is.
public func openRegularFile(_ path: String) throws -> Int32 {
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else { throw FileError(path: path, operation: "open", code: errno) }
    var info = stat()
    guard fstat(fd, &info) == 0 else {
        let code = errno
        close(fd)
        throw FileError(path: path, operation: "stat", code: code)
    }
    let kind: String?
    switch info.st_mode & S_IFMT {
    case S_IFREG: kind = nil
    case S_IFDIR: kind = "is a directory"
    case S_IFIFO: kind = "is a FIFO, not a regular file"
    case S_IFCHR, S_IFBLK: kind = "is a device, not a regular file"
    case S_IFSOCK: kind = "is a socket, not a regular file"
    default: kind = "is not a regular file"
    }
    if let kind {
        close(fd)
        throw FileError(path: path, operation: "open", code: EINVAL, reason: kind)
    }
    return fd
}

/// The contents of the regular file at `path`, refused before reading when it
/// is larger than `limit` bytes. With `signature`, the first `signatureLength`
/// bytes are read first and, unless `signature` accepts them, only they are
/// returned (a foreign file is never read whole).
/// - Throws: ``FileError`` (code `EFBIG` over the limit; see ``openRegularFile(_:)``).
public func readRegularFile(_ path: String, limit: Int, signatureLength: Int = 0,
                            signature: ((Data) -> Bool)? = nil) throws -> Data {
    let fd = try openRegularFile(path)
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw FileError(path: path, operation: "stat", code: errno) }
    let size = Int(info.st_size)
    guard size <= limit else {
        throw FileError(path: path, operation: "read", code: EFBIG, reason: "\(size) bytes is over the limit of \(limit)")
    }
    // One byte more than stat gave, to notice a file that grows while it is read.
    var data = Data(count: size + 1)
    var filled = 0
    var failure: Int32?
    data.withUnsafeMutableBytes { buffer in
        func fill(to end: Int) {
            while filled < end {
                let n = read(fd, buffer.baseAddress! + filled, end - filled)
                if n == 0 { return }
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                filled += n
            }
        }
        fill(to: min(signatureLength, buffer.count))
        guard failure == nil, signature?(Data(buffer.prefix(filled))) ?? true else { return }
        fill(to: buffer.count)
    }
    if let failure { throw FileError(path: path, operation: "read", code: failure) }
    guard filled <= size else { throw FileError(path: path, operation: "read", code: EFBIG, reason: "the file grew while it was read") }
    data.count = filled
    return data
}
