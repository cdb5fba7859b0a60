import Foundation

/// Reads the members of a tar archive (POSIX ustar, GNU and pax headers) one by
/// one from a file, without extracting it: what WebDataset shards are.
///
/// Every header is checked (checksum, octal or base-256 sizes, bounds); a member
/// larger than ``maximumMemberBytes`` is skipped unread and reported, so a hostile
/// archive can cost neither unbounded memory nor an unbounded read.
public struct TarReader {
    /// One member of the archive.
    public struct Member: Sendable, Equatable {
        /// The member's path in the archive (pax and GNU long names resolved).
        public var name: String
        /// Its size in bytes.
        public var size: Int
        /// Where its bytes start in the archive.
        public var offset: Int
        /// Its bytes; nil when not read (``TarReader/next(readingData:)`` with
        /// false, or a member over the size limit, skipped unread).
        public var data: Data?
    }

    /// Why an archive could not be read further.
    public struct ReadError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
        /// The archive.
        public let path: String
        /// The byte offset of the offending header.
        public let offset: Int
        /// What was wrong.
        public let reason: String
        /// `"<path>: tar header at byte <offset>: <reason>"`.
        public var description: String { "\(path): tar header at byte \(offset): \(reason)" }
        /// The same as ``description``.
        public var errorDescription: String? { description }
    }

    /// Members larger than this are skipped unread (reported with `data` nil).
    /// An image member of a dataset is a compressed image: far smaller.
    public static let maximumMemberBytes = 256 << 20
    /// Pax and GNU long-name records larger than this are refused.
    static let maximumMetadataBytes = 1 << 20

    private let handle: FileHandle
    private let path: String
    private let fileSize: Int
    private var offset = 0

    /// A reader of the archive at `url`.
    /// - Throws: when the file cannot be opened.
    public init(contentsOf url: URL) throws {
        handle = try FileHandle(forReadingFrom: url)
        path = url.path
        fileSize = Int(try handle.seekToEnd())
        try handle.seek(toOffset: 0)
    }

    /// The next regular-file member, or nil at the end of the archive (two zero
    /// blocks, or the end of the file right after a member).
    /// - Parameter readingData: false skips the member's bytes (an index of the
    ///   archive: names, sizes and offsets).
    /// - Throws: ``ReadError`` for a corrupt or truncated header or member.
    public mutating func next(readingData: Bool = true) throws -> Member? {
        var longName: String?
        var paxPath: String?
        var paxSize: Int?
        while true {
            let headerOffset = offset
            guard let block = try read(512), block.count == 512 else {
                if offset == headerOffset { return nil } // clean end of file
                throw ReadError(path: path, offset: headerOffset, reason: "truncated header")
            }
            if block.allSatisfy({ $0 == 0 }) { return nil }
            let header = [UInt8](block)
            guard Self.checksumMatches(header) else { throw ReadError(path: path, offset: headerOffset, reason: "checksum mismatch") }
            guard let headerSize = Self.number(header[124..<136]) else {
                throw ReadError(path: path, offset: headerOffset, reason: "invalid size field")
            }
            let size = paxSize ?? headerSize
            let type = header[156]
            let padded = (size + 511) / 512 * 512
            switch type {
            case UInt8(ascii: "x"), UInt8(ascii: "L"):
                guard size <= Self.maximumMetadataBytes, let data = try read(size), data.count == size else {
                    throw ReadError(path: path, offset: headerOffset, reason: "oversized or truncated extended header")
                }
                try skip(padded - size, at: headerOffset)
                if type == UInt8(ascii: "L") {
                    longName = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
                } else {
                    let records = Self.paxRecords(data)
                    paxPath = records["path"] ?? paxPath
                    if let text = records["size"] {
                        guard let value = Int(text), value >= 0 else {
                            throw ReadError(path: path, offset: headerOffset, reason: "invalid pax size \(text)")
                        }
                        paxSize = value
                    }
                }
                continue
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
                let name = paxPath ?? longName ?? Self.ustarName(header)
                let dataOffset = offset
                guard readingData, size <= Self.maximumMemberBytes else {
                    guard size <= fileSize - offset else {
                        throw ReadError(path: path, offset: headerOffset, reason: "member \(name) truncated")
                    }
                    try skip(min(padded, fileSize - offset), at: headerOffset)
                    return Member(name: name, size: size, offset: dataOffset, data: nil)
                }
                guard let data = try read(size), data.count == size else {
                    throw ReadError(path: path, offset: headerOffset, reason: "member \(name) truncated")
                }
                try skip(padded - size, at: headerOffset)
                return Member(name: name, size: size, offset: dataOffset, data: data)
            default: // directories, links, devices, global headers: skipped
                try skip(padded, at: headerOffset)
                (longName, paxPath, paxSize) = (nil, nil, nil)
            }
        }
    }

    private mutating func read(_ count: Int) throws -> Data? {
        guard count > 0 else { return Data() }
        let data = try handle.read(upToCount: count) ?? Data()
        offset += data.count
        return data.isEmpty ? nil : data
    }

    private mutating func skip(_ count: Int, at headerOffset: Int) throws {
        guard count > 0 else { return }
        guard count <= fileSize - offset else {
            throw ReadError(path: path, offset: headerOffset, reason: "member runs past the end of the archive")
        }
        offset += count
        try handle.seek(toOffset: UInt64(offset))
    }

    /// The header's checksum field equals the sum of its bytes with that field
    /// read as spaces (unsigned, or signed as some old tars wrote it).
    static func checksumMatches(_ header: [UInt8]) -> Bool {
        guard let stored = number(header[148..<156]) else { return false }
        var unsigned = 0, signed = 0
        for (i, byte) in header.enumerated() {
            let value = (148..<156).contains(i) ? 32 : byte
            unsigned += Int(value)
            signed += Int(Int8(bitPattern: value))
        }
        return stored == unsigned || stored == signed
    }

    /// An octal field (NUL/space terminated) or GNU base-256 (high bit set);
    /// nil when malformed or beyond `Int`.
    static func number(_ field: ArraySlice<UInt8>) -> Int? {
        if let first = field.first, first & 0x80 != 0 {
            guard first == 0x80 else { return nil } // negative values are not sizes
            var value = 0
            for byte in field.dropFirst() {
                guard value <= (Int.max >> 8) else { return nil }
                value = value << 8 | Int(byte)
            }
            return value
        }
        let digits = field.drop { $0 == 32 }.prefix { $0 != 0 && $0 != 32 }
        guard !digits.isEmpty else { return 0 }
        var value = 0
        for byte in digits {
            guard (48...55).contains(byte), value <= (Int.max >> 3) else { return nil }
            value = value << 3 | Int(byte - 48)
        }
        return value
    }

    /// `prefix/name` of a ustar header.
    static func ustarName(_ header: [UInt8]) -> String {
        func text(_ range: Range<Int>) -> String { String(decoding: header[range].prefix { $0 != 0 }, as: UTF8.self) }
        let name = text(0..<100)
        let isUstar = header[257..<262].elementsEqual("ustar".utf8) && header[262] == 0
        let prefix = isUstar ? text(345..<500) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    /// `length key=value\n` records of a pax extended header (lengths in bytes).
    static func paxRecords(_ data: Data) -> [String: String] {
        var records: [String: String] = [:]
        let bytes = [UInt8](data)
        var start = 0
        while start < bytes.count, let space = bytes[start...].firstIndex(of: 32),
              let length = Int(String(decoding: bytes[start..<space], as: UTF8.self)), length > space - start,
              start + length <= bytes.count {
            let record = bytes[(space + 1)..<(start + length - 1)] // without the trailing newline
            if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                records[String(decoding: record[..<equals], as: UTF8.self)] = String(decoding: record[(equals + 1)...], as: UTF8.self)
            }
            start += length
        }
        return records
    }
}
