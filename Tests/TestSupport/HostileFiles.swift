import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

// Builders of the odd and hostile files the reliability tests feed the library,
// made at test time (nothing large is committed), and a child-process runner
// that measures peak memory.

/// Minimal PNG writing: any chunks with correct CRCs; image data as a zlib
/// stream of stored (uncompressed) deflate blocks.
public enum PNGBuilder {
    /// The PNG signature.
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// A chunk: length, type, data, CRC-32 of type and data.
    public static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + body + bigEndian(crc32(body))
    }

    /// An IHDR chunk.
    public static func header(width: UInt32, height: UInt32, bitDepth: UInt8 = 8, colorType: UInt8 = 0) -> [UInt8] {
        chunk("IHDR", bigEndian(width) + bigEndian(height) + [bitDepth, colorType, 0, 0, 0])
    }

    /// A whole 8-bit grayscale PNG of `width × height` whose row `y` is filled with
    /// `value(y)` (filter type 0 on every row).
    public static func gray(width: Int, height: Int, value: (Int) -> UInt8 = { UInt8(truncatingIfNeeded: $0) }) -> [UInt8] {
        var raw: [UInt8] = []
        raw.reserveCapacity((width + 1) * height)
        for y in 0..<height {
            raw.append(0)
            raw.append(contentsOf: repeatElement(value(y), count: width))
        }
        return signature + header(width: UInt32(width), height: UInt32(height)) + chunk("IDAT", zlibStored(raw)) + chunk("IEND", [])
    }

    /// `data` as a zlib stream of stored deflate blocks (no compression).
    public static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var start = 0
        repeat {
            let end = min(start + 65_535, data.count)
            let length = UInt16(end - start)
            out.append(end == data.count ? 1 : 0)
            out += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)]
            out += data[start..<end]
            start = end
        } while start < data.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65_521
            b = (b + a) % 65_521
        }
        return out + bigEndian(b << 16 | a)
    }

    /// CRC-32 (ISO-HDLC), as PNG chunks use it.
    public static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
        }
        return crc ^ 0xFFFF_FFFF
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}

/// Hand-assembled progressive JPEGs.
public enum JPEGBuilder {
    /// An 8×8 grayscale progressive JPEG of `scans` DC scans (each a first scan
    /// of the DC band with every difference 0: the same gray image however many
    /// scans there are). libjpeg reads every scan; a decoder that caps scans
    /// refuses the file past its cap.
    public static func progressiveGray(scans: Int) -> [UInt8] {
        var out: [UInt8] = [0xFF, 0xD8]
        out += [0xFF, 0xDB, 0x00, 0x43, 0x00] + [UInt8](repeating: 1, count: 64)           // DQT: table 0, all 1
        out += [0xFF, 0xC2, 0x00, 0x0B, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00] // SOF2: 8x8, 1 component
        out += [0xFF, 0xC4, 0x00, 0x14, 0x00] + [1] + [UInt8](repeating: 0, count: 15) + [0x00] // DHT: DC 0, one code "0" → 0
        for _ in 0..<scans {
            out += [0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00]                // SOS: DC first scan, Ah = Al = 0
            out += [0x7F]                                                                     // code "0", padded with 1s
        }
        return out + [0xFF, 0xD9]
    }
}

/// A child process run to completion, with its peak memory.
public struct MeasuredRun {
    /// The exit status, or 128 + the signal that ended it.
    public let status: Int32
    /// Standard output.
    public let stdout: String
    /// Standard error.
    public let stderr: String
    /// The peak resident set size, KiB (`ru_maxrss` of this child alone).
    public let peakKiB: Int

    /// Runs `executable` with `arguments` (and `environment` added to this
    /// process's), with its address space limited to `addressSpaceLimitMiB` when
    /// given (so a runaway allocation fails in the child instead of exhausting the
    /// machine), and reaps it with `wait4` to read its own peak resident set.
    public static func run(_ executable: URL, _ arguments: [String], environment: [String: String] = [:],
                           addressSpaceLimitMiB: Int? = nil) throws -> MeasuredRun {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("measured-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("stdout").path, err = directory.appendingPathComponent("stderr").path
        // /bin/sh sets the limit, then replaces itself with the program (same pid).
        let limit = addressSpaceLimitMiB.map { "ulimit -v \($0 * 1024) && " } ?? ""
        let command = [executable.path] + arguments
        let argv = ["/bin/sh", "-c", limit + "exec \"$@\"", "sh"] + command
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sh", &actions, nil, cArgs, cEnv)
        guard spawned == 0 else { throw NSError(domain: "posix_spawn", code: Int(spawned)) }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let exit = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return MeasuredRun(status: exit, stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                           stderr: (try? String(contentsOfFile: err, encoding: .utf8)) ?? "", peakKiB: usage.ru_maxrss)
    }
}

/// A scratch copy of a fixture checkpoint folder to damage in a test (links are
/// copied as the files they point to); removed by ``remove()``.
public struct ScratchCheckpoint {
    /// The copy.
    public let directory: URL

    /// Copies `Tests/Fixtures/<fixture>` to a fresh temporary folder.
    public init(_ fixture: String) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("scratch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let source = Fixtures.url(fixture)
        for name in try FileManager.default.contentsOfDirectory(atPath: source.path) {
            let data = try Data(contentsOf: source.appendingPathComponent(name).resolvingSymlinksInPath())
            try data.write(to: directory.appendingPathComponent(name))
        }
    }

    /// The file `name` in the copy.
    public func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    /// Sets the value at the dotted `key` (`vision_config.image_size`) of the JSON
    /// object in `file` (nil removes it).
    public func setJSON(_ file: String, _ key: String, _ value: Any?) throws {
        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url(file))) as? [String: Any] ?? [:]
        func set(_ dictionary: inout [String: Any], _ path: ArraySlice<Substring>) {
            let head = String(path.first!)
            if path.count == 1 {
                dictionary[head] = value
            } else {
                var inner = dictionary[head] as? [String: Any] ?? [:]
                set(&inner, path.dropFirst())
                dictionary[head] = inner
            }
        }
        set(&object, key.split(separator: ".")[...])
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: url(file))
    }

    /// Overwrites element `index` of the tensor `key` in `model.safetensors` with
    /// the raw little-endian `bytes` (for a NaN: `[0x00, 0x7E]` in an F16 tensor,
    /// `[0, 0, 0xC0, 0x7F]` in an F32 one).
    public func patchTensor(_ key: String, element index: Int, bytes: [UInt8]) throws {
        let file = url("model.safetensors")
        var data = try Data(contentsOf: file)
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: data[8..<(8 + headerLength)]) as? [String: Any] ?? [:]
        guard let entry = header[key] as? [String: Any], let offsets = entry["data_offsets"] as? [Int] else {
            throw NSError(domain: "ScratchCheckpoint", code: 1, userInfo: [NSLocalizedDescriptionKey: "no tensor \(key)"])
        }
        let at = 8 + headerLength + offsets[0] + index * bytes.count
        data.replaceSubrange(at..<(at + bytes.count), with: bytes)
        try data.write(to: file)
    }

    /// Deletes the copy.
    public func remove() {
        try? FileManager.default.removeItem(at: directory)
    }
}

/// A test case with a fresh temporary folder, `work`, for each test.
open class TemporaryDirectoryTestCase: XCTestCase {
    /// The folder, removed after the test.
    public var work: URL!

    /// Creates ``work``.
    override open func setUpWithError() throws {
        try super.setUpWithError()
        work = FileManager.default.temporaryDirectory.appendingPathComponent("\(type(of: self))-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    }

    /// Removes ``work``.
    override open func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: work)
        try super.tearDownWithError()
    }
}
