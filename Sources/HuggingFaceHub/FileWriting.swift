import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes all of `bytes` to the open file `descriptor`, retrying short writes and
/// interruptions.
/// - Throws: ``HubError/fileSystem(path:operation:reason:)`` (`write` on `path`).
func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32, path: String) throws {
    var done = 0
    while done < bytes.count {
        let n = write(descriptor, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 {
            if errno == EINTR { continue }
            throw HubError.posix(path, "write")
        }
        done += n
    }
}

/// Replaces `path` with `bytes` atomically: they go to a temporary file beside it
/// (`.<name>.<UUID>.tmp`), which is fsync'ed and renamed over `path`, so readers
/// see the old contents or the new, never a part. On any error the temporary file
/// is removed and `path` is left untouched.
/// - Throws: ``HubError/fileSystem(path:operation:reason:)``.
func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    let name = (path as NSString).lastPathComponent
    let temporary = (path as NSString).deletingLastPathComponent + "/.\(name).\(UUID().uuidString).tmp"
    var descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
    guard descriptor >= 0 else { throw HubError.posix(temporary, "create") }
    var placed = false
    defer {
        if descriptor >= 0 { close(descriptor) }
        if !placed { unlink(temporary) }
    }
    try bytes.withUnsafeBytes { try writeAll($0, to: descriptor, path: temporary) }
    guard fsync(descriptor) == 0 else { throw HubError.posix(temporary, "fsync") }
    let closed = close(descriptor)
    descriptor = -1
    guard closed == 0 else { throw HubError.posix(temporary, "close") }
    guard rename(temporary, path) == 0 else { throw HubError.posix(path, "rename") }
    placed = true
}
