import Foundation
import NeuralCore
import NeuralModels

/// One input of a batch: where the image is and how results name it.
public struct BatchItem: Sendable, Equatable {
    /// The image file.
    public let url: URL
    /// The name written to the results (relative to the folder for folder runs).
    public let name: String

    /// An item for `url`, named `name`.
    public init(url: URL, name: String) {
        self.url = url
        self.name = name
    }

    /// The `.txt` file beside the image that ``BatchRunner`` writes its prompt to
    /// (`photo.jpg` → `photo.txt`).
    public var sidecarURL: URL { url.deletingPathExtension().appendingPathExtension("txt") }
}

/// What a batch run did.
public struct BatchSummary: Sendable, Equatable {
    /// Images interrogated and written.
    public var succeeded = 0
    /// Images skipped because a resumed output already had them.
    public var skipped = 0
    /// Images that failed, with the reason.
    public var failures: [Failure] = []

    /// A failed image.
    public struct Failure: Sendable, Equatable {
        /// The image's name.
        public var image: String
        /// Why it failed.
        public var reason: String
    }

    /// Creates an empty summary.
    public init() {}
}

/// A sidecar `.txt` that was not written.
public struct SidecarError: Error, LocalizedError, CustomStringConvertible, Sendable, Equatable {
    /// The sidecar file.
    public let path: String
    /// Why it was not written.
    public let reason: String

    /// `"<path>: <reason>"`.
    public var description: String { "sidecar \(path): \(reason)" }
    /// The same as ``description``.
    public var errorDescription: String? { description }
}

/// Runs an interrogator over many images: records stream to a ``ResultWriter``
/// as each image finishes, a failed image is recorded (an error record) and
/// the batch goes on, and images a resumed output already holds are skipped.
public struct BatchRunner {
    /// The interrogator.
    public let interrogator: Interrogator
    /// The mode to run.
    public let mode: InterrogationMode
    /// Options for every image.
    public let options: InterrogationOptions
    /// Also write each prompt to the item's ``BatchItem/sidecarURL``.
    public let sidecar: Bool
    /// Replace a sidecar that exists with other text than this run would write
    /// (by default such a file, e.g. the user's own caption, is kept and the
    /// image fails).
    public let overwriteSidecars: Bool
    /// Receives (images finished, images to do, the image just finished).
    public let progress: ((Int, Int, String) -> Void)?

    /// A runner for `interrogator` in `mode`.
    public init(interrogator: Interrogator, mode: InterrogationMode, options: InterrogationOptions = .init(),
                sidecar: Bool = false, overwriteSidecars: Bool = false, progress: ((Int, Int, String) -> Void)? = nil) {
        self.interrogator = interrogator
        self.mode = mode
        self.options = options
        self.sidecar = sidecar
        self.overwriteSidecars = overwriteSidecars
        self.progress = progress
    }

    /// Interrogates each item on its own, writing its record as it finishes: the
    /// sidecar first, then the record, so a record always means the image is
    /// done (a failed sidecar makes an error record, and resuming retries it).
    public func run(_ items: [BatchItem], writer: ResultWriter) -> BatchSummary {
        var summary = BatchSummary()
        let done = writer.completedImages
        let todo = items.filter { !done.contains($0.name) }
        summary.skipped = items.count - todo.count
        for (index, item) in todo.enumerated() {
            do {
                let image = try ImageDecoder.decode(contentsOf: item.url)
                let record = BatchRecord(image: item.name, result: try interrogator.interrogate([image], mode: mode, options: options))
                if sidecar { try writeSidecar(record.summary, to: item.sidecarURL) }
                try writer.write(record)
                summary.succeeded += 1
            } catch {
                fail(item.name, error, writer: writer, &summary)
            }
            progress?(index + 1, todo.count, item.name)
        }
        return summary
    }

    /// Interrogates all items together (one prompt for the mean of their
    /// embeddings; the first image is captioned), written as one record named
    /// by the items' names joined with "+"; images that cannot be read get error
    /// records of their own.
    public func runCombined(_ items: [BatchItem], writer: ResultWriter) -> BatchSummary {
        var summary = BatchSummary()
        var images: [RGBImage] = []
        for item in items {
            do {
                images.append(try ImageDecoder.decode(contentsOf: item.url))
            } catch {
                fail(item.name, error, writer: writer, &summary)
            }
        }
        guard !images.isEmpty else { return summary }
        let name = items.map(\.name).joined(separator: "+")
        do {
            try writer.write(BatchRecord(image: name, result: try interrogator.interrogate(images, mode: mode, options: options)))
            summary.succeeded = images.count
        } catch {
            fail(name, error, writer: writer, &summary)
        }
        progress?(1, 1, "combined")
        return summary
    }

    /// Records a failure in the summary and, as an error record, in the output.
    private func fail(_ name: String, _ error: any Error, writer: ResultWriter, _ summary: inout BatchSummary) {
        let reason = String(describing: error)
        summary.failures.append(.init(image: name, reason: reason))
        // An output that cannot take even the error record has been reported above.
        try? writer.write(BatchRecord(image: name, error: reason))
    }

    /// Writes `text` (and a line end) to the sidecar `url`: in place of a file
    /// that already holds exactly that text (this run's, from before an
    /// interruption) and, with ``overwriteSidecars``, of any other; through a
    /// symbolic link to its target.
    /// - Throws: ``SidecarError``.
    func writeSidecar(_ text: String, to url: URL) throws {
        let data = Data((text + "\n").utf8)
        let path = url.path
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFREG else { throw SidecarError(path: path, reason: "exists and is not a regular file") }
            if let existing = try? readRegularFile(path, limit: data.count), existing == data { return }
            guard overwriteSidecars else {
                throw SidecarError(path: path, reason: "exists with other text; kept (--overwrite-sidecars replaces it)")
            }
        }
        do {
            try writeAtomically(to: ResolvedPath.following(path), mode: 0o644) { write in try data.withUnsafeBytes { try write($0) } }
        } catch {
            throw SidecarError(path: path, reason: String(describing: error))
        }
    }
}

/// Paths with their symbolic links followed.
enum ResolvedPath {
    /// `path` with every symbolic link along it followed, also when the last one
    /// dangles (its target is where a new file goes); `path` itself when it
    /// cannot be resolved (a missing folder: writing there then fails with the
    /// system's reason).
    static func following(_ path: String) -> String {
        var current = path
        for _ in 0..<40 {
            if let resolved = realpath(current, nil) {
                defer { free(resolved) }
                return String(cString: resolved)
            }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let length = readlink(current, &buffer, Int(PATH_MAX))
            let directory = (current as NSString).deletingLastPathComponent
            guard length > 0 else {
                // Not a link: resolve the folder and keep the name.
                guard let folder = realpath(directory.isEmpty ? "." : directory, nil) else { return path }
                defer { free(folder) }
                return (String(cString: folder) as NSString).appendingPathComponent((current as NSString).lastPathComponent)
            }
            let target = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            current = target.hasPrefix("/") ? target : (directory as NSString).appendingPathComponent(target)
        }
        return path
    }
}
