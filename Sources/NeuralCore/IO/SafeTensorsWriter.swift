import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes safetensors files atomically.
///
/// The file is written to a temporary name in the destination's directory, flushed
/// and then renamed over the destination, so readers see either the old file or
/// the complete new one, never a partial write; on any failure the temporary file
/// is removed. Tensors are laid out largest element type first, then by name, so
/// every tensor's data is aligned to its element size; the header is padded with
/// spaces to a multiple of 8 bytes, as the Python writer does.
public enum SafeTensorsWriter {
    /// Writes `tensors` (with optional `__metadata__`) to `url`.
    /// - Throws: ``FileError`` if the file cannot be written or moved into place.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws {
        let path = url.path
        let ordered = tensors.sorted { ($0.value.dtype.byteSize, $1.key) > ($1.value.dtype.byteSize, $0.key) }
        var header = "{"
        var fields: [String] = []
        if !metadata.isEmpty {
            let items = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            fields.append("\"__metadata__\":{\(items.joined(separator: ","))}")
        }
        var offset = 0
        for (name, tensor) in ordered {
            let end = offset + tensor.byteCount
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            fields.append("\(jsonString(name)):{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        header += fields.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(UInt8(ascii: " ")) }

        try writeAtomically(to: path) { write in
            var length = UInt64(headerBytes.count).littleEndian
            try withUnsafeBytes(of: &length) { try write($0) }
            try headerBytes.withUnsafeBytes { try write($0) }
            for (_, tensor) in ordered {
                try tensor.withUnsafeBytes { try write($0) }
            }
        }
    }

    /// A JSON string literal for `text`.
    private static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Writes all of `bytes` to the file descriptor `fd` (retrying short writes and
/// interrupted calls).
/// - Throws: ``FileError`` naming `path`.
public func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    var done = 0
    while done < bytes.count {
        let n = Foundation.write(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 {
            if errno == EINTR { continue }
            throw FileError(path: path, operation: "write", code: errno)
        }
        done += n
    }
}

/// Creates `path` atomically: `body` writes through the given function into a
/// temporary file beside `path`, which is then fsync'ed and renamed over `path`.
/// On any error the temporary file is removed and `path` is left untouched.
///
/// - Parameters:
///   - path: the file to create or replace.
///   - mode: the permissions of the new file.
///   - body: writes the contents through the function it is given.
///   - keepLocked: when true the new file is locked (`flock`, exclusive) before
///     it replaces `path` and its descriptor is returned open, so a lock held on
///     the file at `path` passes to its replacement without a gap.
/// - Returns: the new file's descriptor with `keepLocked` (the caller closes it), else nil.
@discardableResult
public func writeAtomically(to path: String, mode: mode_t = 0o644, keepLocked: Bool = false,
                            _ body: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws -> Int32? {
    let directory = (path as NSString).deletingLastPathComponent
    let base = (path as NSString).lastPathComponent
    let temporary = (directory.isEmpty ? "" : directory + "/") + ".\(base).\(UUID().uuidString).tmp"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
    guard fd >= 0 else { throw FileError(path: temporary, operation: "create", code: errno) }
    var closed = false
    var succeeded = false
    defer {
        if !closed { close(fd) }
        if !succeeded { unlink(temporary) }
    }
    fchmod(fd, mode) // the umask may have narrowed it
    try body { chunk in try writeFully(fd, chunk, path: temporary) }
    guard fsync(fd) == 0 else { throw FileError(path: temporary, operation: "fsync", code: errno) }
    if keepLocked {
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { throw FileError(path: temporary, operation: "lock", code: errno) }
    } else {
        closed = true
        guard close(fd) == 0 else { throw FileError(path: temporary, operation: "close", code: errno) }
    }
    guard rename(temporary, path) == 0 else { throw FileError(path: path, operation: "rename", code: errno) }
    succeeded = true
    closed = true
    return keepLocked ? fd : nil
}
