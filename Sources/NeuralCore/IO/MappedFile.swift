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
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw FileError(path: path, operation: "open", code: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileError(path: path, operation: "stat", code: errno) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw FileError(path: path, operation: "open", code: EISDIR) }
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

    /// Creates an error for `operation` on `path` that failed with `code`.
    public init(path: String, operation: String, code: Int32) {
        self.path = path
        self.operation = operation
        self.code = code
    }

    /// `"<operation> <path>: <strerror>"`.
    public var description: String {
        "\(operation) \(path): \(String(cString: strerror(code)))"
    }
}

extension FileError: LocalizedError {
    /// The same text as ``description``, for `localizedDescription`.
    public var errorDescription: String? { description }
}
