import Foundation
import NeuralCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Closes a file descriptor (a free function: inside ``ResultWriter`` the
/// name `close` is the writer's own method).
private func closeDescriptor(_ fd: Int32) {
    _ = close(fd)
}

/// The formats results are written in.
public enum OutputFormat: String, Sendable, CaseIterable, Codable {
    /// The prompt alone for one image; "image: prompt" lines for several.
    case text
    /// A JSON array of records (a file is rewritten atomically after each image).
    case json
    /// One JSON record per line, appended as each image finishes.
    case jsonl
    /// `image,prompt,error` rows, readable as the reference's `desc.csv`
    /// (Python `csv.writer`: minimal quoting, `\r\n` line ends).
    case csv
}

/// One image's entry in a results file: its result, or why it failed.
public struct BatchRecord: Codable, Sendable, Equatable {
    /// The image as given (relative to the folder for folder runs).
    public var image: String
    /// The interrogation result; nil for a failed image.
    public var result: InterrogationResult?
    /// Why the image failed; nil for a result.
    public var error: String?

    /// A record of a result.
    public init(image: String, result: InterrogationResult) {
        self.image = image
        self.result = result
    }

    /// A record of a failed image.
    public init(image: String, error: String) {
        self.image = image
        self.error = error
    }

    private enum CodingKeys: String, CodingKey { case image, result, error }

    /// Decodes a record, which must carry exactly one of `result` and `error`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        image = try c.decode(String.self, forKey: .image)
        result = try c.decodeIfPresent(InterrogationResult.self, forKey: .result)
        error = try c.decodeIfPresent(String.self, forKey: .error)
        guard (result == nil) != (error == nil) else {
            throw DecodingError.dataCorruptedError(forKey: .result, in: c, debugDescription: "a record holds a result or an error")
        }
    }

    /// Whether the image failed.
    public var failed: Bool { error != nil }

    /// The text the `text` and `csv` formats show: the prompt, else the negative
    /// prompt, else a one-line analysis summary; empty for a failed image.
    public var summary: String {
        guard let result else { return "" }
        if let prompt = result.prompt { return prompt }
        if let negative = result.negativePrompt { return negative }
        if let analysis = result.analysis {
            return analysis.map { table in
                "\(table.table): " + table.matches.map { "\($0.label) (\(String(format: "%.4f", $0.similarity)))" }.joined(separator: ", ")
            }.joined(separator: "; ")
        }
        return ""
    }
}

/// Why results could not be written, or an output could not be resumed.
public enum ResultWriterError: Error, LocalizedError, CustomStringConvertible, Sendable, Equatable {
    /// `--resume` met a file it does not fully understand (another format, a
    /// damaged record, someone's notes); nothing was changed. `line` is 1-based
    /// (0 for the whole file).
    case notUnderstood(path: String, line: Int, reason: String)
    /// The output cannot be resumed at all (text format, or not a regular file).
    case notResumable(path: String, reason: String)
    /// Another run holds the output file.
    case locked(path: String)
    /// A system call on the output failed.
    case io(path: String, reason: String)
    /// A record could not be encoded (a non-finite number); nothing was written.
    case unencodable(image: String, reason: String)

    /// Whether the error is about the arguments given (exit status 64) rather
    /// than about the run.
    public var isUsageError: Bool {
        switch self {
        case .notUnderstood, .notResumable: true
        case .locked, .io, .unencodable: false
        }
    }

    /// A one-line explanation naming the file (and line).
    public var description: String {
        switch self {
        case let .notUnderstood(path, line, reason):
            "cannot resume \(path)" + (line > 0 ? ", line \(line)" : "") + ": \(reason); it was left as it is "
                + "(give another --output, or remove the file to start afresh)"
        case let .notResumable(path, reason): "cannot resume \(path): \(reason)"
        case let .locked(path): "\(path) is being written by another run (it holds the file's lock)"
        case let .io(path, reason): "\(path): \(reason)"
        case let .unencodable(image, reason): "cannot encode the record of \(image): \(reason)"
        }
    }

    /// The same as ``description``.
    public var errorDescription: String? { description }
}

/// Streams records to a file, a device or standard output as each image
/// finishes (one `write` per record, nothing buffered), so a reader on a pipe
/// sees every record at once and an interrupted run keeps everything it
/// finished; can resume a file a previous run left behind.
///
/// Where records go:
/// - standard output (no URL), a FIFO, a device, `/dev/stdout`, `/dev/fd/N`:
///   written in place as a stream (JSON as an array whose closing bracket comes
///   at ``close()``);
/// - a regular file (through any symbolic links, which are followed and kept):
///   locked (`flock`) for the whole run, so two runs cannot interleave; line
///   formats append in place, JSON is replaced atomically after each record.
///
/// Resuming reads the file first and refuses (``ResultWriterError/notUnderstood(path:line:reason:)``)
/// anything but records of the chosen format; the only text it drops is a torn
/// last record of a killed run.
public final class ResultWriter {
    /// The format.
    public let format: OutputFormat
    /// Where records go, as given (nil: standard output).
    public let url: URL?
    /// The records written or resumed, in order.
    public private(set) var records: [BatchRecord] = []
    private var output: Output
    /// Whether this writer prints one bare prompt (single-image text runs).
    private let bare: Bool
    /// For a stream: whether the JSON array's opening bracket or the CSV header
    /// has been written.
    private var streamOpened = false
    /// The CSV columns: ``csvHeader``, or the reference's `image,prompt` when a
    /// file of that layout is resumed (its failed images are then not written).
    private var csvColumns = csvHeader
    /// For a file: how long its kept part is (0 unless resuming), and whether it
    /// has been cut to it and started. The file is changed only when the first
    /// record (or the close) comes, so a run that stops before, say at a model
    /// that does not load, leaves it as it was.
    private var keptLength = 0, started = false
    /// Whether this writer created the file (then removed if nothing was written).
    private var created = false

    /// The two kinds of output.
    private enum Output {
        /// A file rewritten or appended to, under its resolved path, locked.
        case file(fd: Int32, path: String)
        /// A stream written in order (standard output, a FIFO, a device).
        case stream(fd: Int32, path: String, owned: Bool)
        /// Closed.
        case closed
    }

    /// A writer to `url` (standard output when nil). With `resume`, the records
    /// already in the file are kept (see ``completedImages``) and new ones are
    /// added after them.
    /// - Throws: ``ResultWriterError``: ``ResultWriterError/notUnderstood(path:line:reason:)``
    ///   or ``ResultWriterError/notResumable(path:reason:)`` for a file resume
    ///   cannot continue, ``ResultWriterError/locked(path:)`` when another run
    ///   writes the file, ``ResultWriterError/io(path:reason:)``.
    public init(format: OutputFormat, url: URL?, resume: Bool, singleImage: Bool) throws {
        self.format = format
        self.url = url
        bare = singleImage && format == .text && !resume
        guard let url else {
            if resume { throw ResultWriterError.notResumable(path: "standard output", reason: "--resume needs an output file") }
            output = .stream(fd: STDOUT_FILENO, path: "standard output", owned: false)
            return
        }
        let given = url.path
        if let descriptor = Self.descriptorNamed(by: given) {
            // The descriptor itself, not the file reopened through /proc: a pipe or
            // socket of another user cannot be reopened, and a regular file behind
            // it is written at the shell's offset, like any stream.
            if resume { throw ResultWriterError.notResumable(path: given, reason: "it names an open descriptor, not a file") }
            let fd = dup(descriptor)
            guard fd >= 0 else { throw ResultWriterError.io(path: given, reason: "not open: \(String(cString: strerror(errno)))") }
            output = .stream(fd: fd, path: given, owned: true)
            return
        }
        var info = stat()
        if stat(given, &info) == 0, info.st_mode & S_IFMT != S_IFREG {
            if resume { throw ResultWriterError.notResumable(path: given, reason: "it is not a regular file") }
            if info.st_mode & S_IFMT == S_IFDIR { throw ResultWriterError.io(path: given, reason: "is a directory") }
            let fd = open(given, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw ResultWriterError.io(path: given, reason: "cannot open: \(String(cString: strerror(errno)))") }
            output = .stream(fd: fd, path: given, owned: true)
            return
        }
        if resume && format == .text {
            throw ResultWriterError.notResumable(path: given, reason: "text output cannot be read back unambiguously "
                                                  + "(names may hold \": \" or line breaks); use --format jsonl, csv or json")
        }
        let (fd, path, created) = try Self.openLocked(given)
        output = .file(fd: fd, path: path)
        self.created = created
        if resume {
            do {
                let contents = try Self.read(fd, path: path, format: format)
                records = contents.records
                csvColumns = contents.csvColumns ?? Self.csvHeader
                keptLength = contents.length
            } catch {
                closeDescriptor(fd)
                output = .closed
                throw error
            }
        }
    }

    deinit {
        switch output {
        case let .file(fd, path):
            if created && !started { unlink(path) }
            closeDescriptor(fd)
        case let .stream(fd, _, owned) where owned: closeDescriptor(fd)
        default: break
        }
    }

    /// Cuts a file to its kept part (a torn record goes) and writes its start
    /// (the CSV header, the JSON document), once, before the first record.
    private func start() throws {
        guard !started, case let .file(fd, path) = output else { return }
        started = true
        guard ftruncate(fd, off_t(keptLength)) == 0 else { throw Self.ioError(path, "truncate") }
        if format == .json {
            try rewriteJSON()
        } else {
            guard lseek(fd, 0, SEEK_END) >= 0 else { throw Self.ioError(path, "seek") }
            if format == .csv && keptLength == 0 { try append(Self.csvRow(Self.csvHeader)) }
        }
    }

    /// The images whose last record in a resumed file is a result (failed images
    /// are done again).
    public var completedImages: Set<String> {
        var latest: [String: Bool] = [:]
        for record in records { latest[record.image] = !record.failed }
        return Set(latest.filter(\.value).keys)
    }

    /// Writes one record (failed images too, except in the text format, which
    /// has no place for them) and makes it durable before returning.
    /// - Throws: ``ResultWriterError/unencodable(image:reason:)`` (nothing is
    ///   written), ``ResultWriterError/io(path:reason:)``.
    public func write(_ record: BatchRecord) throws {
        let text = try encode(record)
        try start()
        if format == .json {
            // A retried image's error record is replaced by its new record.
            var updated = records.filter { !($0.image == record.image && $0.failed) }
            updated.append(record)
            if case .file = output {
                let previous = records
                records = updated
                do { try rewriteJSON() } catch { records = previous; throw error }
            } else {
                records = updated
                try append((streamOpened ? ",\n" : "[\n") + text)
                streamOpened = true
            }
            return
        }
        if record.failed && (format == .text || (format == .csv && csvColumns.count == 2)) { return }
        if case .stream = output, format == .csv, !streamOpened {
            try append(Self.csvRow(Self.csvHeader))
            streamOpened = true
        }
        try append(text)
        records.append(record)
    }

    /// Finishes the output: closes the JSON array of a stream and releases the
    /// file (and its lock).
    public func close() throws {
        try start()
        defer {
            switch output {
            case let .file(fd, _): closeDescriptor(fd)
            case let .stream(fd, _, owned) where owned: closeDescriptor(fd)
            default: break
            }
            output = .closed
        }
        if case .stream = output, format == .json {
            try append(streamOpened ? "\n]\n" : "[]\n")
        }
        if case .stream = output, format == .csv, !streamOpened {
            try append(Self.csvRow(Self.csvHeader))
        }
    }

    // MARK: Encoding

    /// The CSV columns.
    static let csvHeader = ["image", "prompt", "error"]

    /// The bytes one record adds (with its line end).
    private func encode(_ record: BatchRecord) throws -> String {
        switch format {
        case .text: return (bare ? record.summary : "\(record.image): \(record.summary)") + "\n"
        case .jsonl: return try Self.json(record, pretty: false) + "\n"
        case .json: return try Self.indentedJSON(record)
        case .csv: return Self.csvRow(Array([record.image, record.summary, record.error ?? ""].prefix(csvColumns.count)))
        }
    }

    /// A record as JSON (sorted keys, slashes unescaped).
    static func json(_ record: BatchRecord, pretty: Bool) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        do {
            return String(decoding: try encoder.encode(record), as: UTF8.self)
        } catch {
            throw ResultWriterError.unencodable(image: record.image, reason: String(describing: error))
        }
    }

    /// A record as an element of the JSON array: pretty-printed, indented by two.
    static func indentedJSON(_ record: BatchRecord) throws -> String {
        try json(record, pretty: true).split(separator: "\n", omittingEmptySubsequences: false)
            .map { "  " + $0 }.joined(separator: "\n")
    }

    /// The whole JSON document of `records`: an array, one indented record after
    /// another (what a stream writes piece by piece).
    static func jsonDocument(_ records: [BatchRecord]) throws -> String {
        guard !records.isEmpty else { return "[]\n" }
        return "[\n" + (try records.map(indentedJSON)).joined(separator: ",\n") + "\n]\n"
    }

    /// A CSV row as Python's `csv.writer` (QUOTE_MINIMAL) writes it.
    static func csvRow(_ fields: [String]) -> String {
        fields.map { field in
            let needsQuotes = field.contains(",") || field.contains("\"") || field.contains("\n") || field.contains("\r")
            return needsQuotes ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
        }.joined(separator: ",") + "\r\n"
    }

    // MARK: Output

    /// Appends `text` with one `write`, and syncs a file.
    private func append(_ text: String) throws {
        let (fd, path, isFile): (Int32, String, Bool)
        switch output {
        case let .file(f, p): (fd, path, isFile) = (f, p, true)
        case let .stream(f, p, _): (fd, path, isFile) = (f, p, false)
        case .closed: throw ResultWriterError.io(path: url?.path ?? "standard output", reason: "the writer is closed")
        }
        do {
            try Array(text.utf8).withUnsafeBytes { try writeFully(fd, $0, path: path) }
        } catch let error as FileError {
            throw ResultWriterError.io(path: path, reason: error.description)
        }
        if isFile && fsync(fd) != 0 { throw Self.ioError(path, "sync") }
    }

    /// Replaces the JSON file with the current records, atomically; the lock
    /// passes to the new file.
    private func rewriteJSON() throws {
        guard case let .file(fd, path) = output else { return }
        let data = Data(try Self.jsonDocument(records).utf8)
        var info = stat()
        let mode = fstat(fd, &info) == 0 ? info.st_mode & 0o7777 : 0o644
        do {
            let replacement = try writeAtomically(to: path, mode: mode, keepLocked: true) { write in
                try data.withUnsafeBytes { try write($0) }
            }
            if let replacement {
                closeDescriptor(fd)
                output = .file(fd: replacement, path: path)
            }
        } catch let error as FileError {
            throw ResultWriterError.io(path: path, reason: error.description)
        }
    }

    /// The open descriptor a path such as `/dev/stdout`, `/dev/fd/3` or
    /// `/proc/self/fd/3` names; nil for any other path.
    static func descriptorNamed(by path: String) -> Int32? {
        switch path {
        case "/dev/stdin": return 0
        case "/dev/stdout": return 1
        case "/dev/stderr": return 2
        default:
            for prefix in ["/dev/fd/", "/proc/self/fd/"] where path.hasPrefix(prefix) {
                return Int32(path.dropFirst(prefix.count))
            }
            return nil
        }
    }

    static func ioError(_ path: String, _ operation: String) -> ResultWriterError {
        .io(path: path, reason: "\(operation) failed: \(String(cString: strerror(errno)))")
    }

    /// Opens (creating it if needed) the regular file at `given`, resolving
    /// symbolic links, and takes its lock. The lock is verified to be on the file
    /// the path names now (a JSON writer replaces its file as it goes).
    /// - Returns: the descriptor, the resolved path, and whether the file was created.
    private static func openLocked(_ given: String) throws -> (Int32, String, Bool) {
        for _ in 0..<20 {
            var created = true
            var fd = open(given, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd < 0 && errno == EEXIST {
                // Exists (or a link to where a file may yet be made).
                created = false
                fd = open(given, O_RDWR | O_CLOEXEC)
                if fd < 0 && errno == ENOENT {
                    created = true
                    fd = open(given, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
                }
            }
            guard fd >= 0 else { throw ResultWriterError.io(path: given, reason: "cannot open: \(String(cString: strerror(errno)))") }
            guard let resolved = realpath(given, nil) else {
                closeDescriptor(fd)
                throw ResultWriterError.io(path: given, reason: "cannot resolve: \(String(cString: strerror(errno)))")
            }
            let path = String(cString: resolved)
            free(resolved)
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                closeDescriptor(fd)
                throw ResultWriterError.locked(path: path)
            }
            var opened = stat(), named = stat()
            if fstat(fd, &opened) == 0, stat(path, &named) == 0, opened.st_ino == named.st_ino, opened.st_dev == named.st_dev {
                guard opened.st_mode & S_IFMT == S_IFREG else {
                    closeDescriptor(fd)
                    throw ResultWriterError.io(path: path, reason: "not a regular file")
                }
                return (fd, path, created)
            }
            closeDescriptor(fd) // replaced while we locked it: try the new file
        }
        throw ResultWriterError.locked(path: given)
    }
}
