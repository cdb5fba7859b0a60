import Foundation
import NeuralCore
import NeuralModels

/// One input of a batch: where the image is and how results name it.
public struct BatchItem: Sendable, Equatable {
    /// The image file, or the WebDataset shard (tar file) that holds it.
    public let url: URL
    /// The name written to the results (relative to the folder for folder runs;
    /// the sample key for WebDataset samples).
    public let name: String
    /// Where in the shard `url` the image's bytes are, for a WebDataset sample.
    public let member: Member?
    /// Why the item cannot be read, for an input found unreadable while listing
    /// (a WebDataset shard with a corrupt header): it is reported as a failure.
    public let failure: String?

    /// A member's bytes in a tar file.
    public struct Member: Sendable, Equatable {
        /// The first byte.
        public let offset: Int
        /// The size in bytes.
        public let size: Int
    }

    /// An item for the image file `url`, named `name`.
    public init(url: URL, name: String) {
        self.url = url
        self.name = name
        member = nil
        failure = nil
    }

    /// A WebDataset sample of `shard`: its image member, named by the sample `key`.
    public init(shard: URL, key: String, member: Member) {
        url = shard
        name = key
        self.member = member
        failure = nil
    }

    /// An input found unreadable while listing, named `name`, failing with `reason`.
    public init(unreadable url: URL, name: String, reason: String) {
        self.url = url
        self.name = name
        member = nil
        failure = reason
    }

    /// An input that could not be listed.
    public struct Unreadable: Error, CustomStringConvertible, LocalizedError, Sendable {
        /// Why.
        public let description: String
        /// The same as ``description``.
        public var errorDescription: String? { description }
    }

    /// The decoded image: the file's, or the shard member's (refused unread when
    /// it claims more than ``TarReader/maximumMemberBytes``).
    /// - Throws: the file's and the decoder's errors (typed, naming the file).
    public func loadImage() throws -> RGBImage {
        if let failure { throw Unreadable(description: failure) }
        guard let member else { return try ImageDecoder.decode(contentsOf: url) }
        guard member.size <= TarReader.maximumMemberBytes else {
            throw WebDataset.SampleError(description: "\(url.lastPathComponent): sample \(name): \(member.size) bytes, "
                                             + "over the \(TarReader.maximumMemberBytes >> 20) MiB member limit")
        }
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(member.offset))
        let data = try handle.read(upToCount: member.size) ?? Data()
        guard data.count == member.size else {
            throw WebDataset.SampleError(description: "\(url.lastPathComponent): sample \(name) is truncated")
        }
        do {
            return try ImageDecoder.decode(data: data)
        } catch {
            throw WebDataset.SampleError(description: "\(url.lastPathComponent): sample \(name): \(error)")
        }
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
    /// Images captioned and embedded together (at least 1).
    public let batchSize: Int
    /// Receives (images finished, images to do, the image just finished).
    public let progress: ((Int, Int, String) -> Void)?

    /// A runner for `interrogator` in `mode`, `batchSize` images at a time.
    public init(interrogator: Interrogator, mode: InterrogationMode, options: InterrogationOptions = .init(),
                sidecar: Bool = false, overwriteSidecars: Bool = false, batchSize: Int = 1,
                progress: ((Int, Int, String) -> Void)? = nil) {
        self.interrogator = interrogator
        self.mode = mode
        self.options = options
        self.sidecar = sidecar
        self.overwriteSidecars = overwriteSidecars
        self.batchSize = max(1, batchSize)
        self.progress = progress
    }

    /// Interrogates each item on its own, writing records in item order as they
    /// finish: the sidecar first, then the record, so a record always means the
    /// image is done (a failed sidecar makes an error record, and resuming
    /// retries it).
    ///
    /// Images are captioned and embedded ``batchSize`` at a time
    /// (``Interrogator/features(ofPrepared:)``; each result equals the image's
    /// alone), while a second thread decodes and prepares the next ones. Memory
    /// in flight: at most 3 × ``batchSize`` prepared images (the models' inputs,
    /// e.g. 2.4 MB each for ViT-L/14 + BLIP-large) and one decoded image.
    public func run(_ items: [BatchItem], writer: ResultWriter) -> BatchSummary {
        var summary = BatchSummary()
        let done = writer.completedImages
        let todo = items.filter { !done.contains($0.name) }
        summary.skipped = items.count - todo.count
        let captioning = options.subject == nil && mode.usesCaption
        let embedding = mode != .caption || options.includeNegative
        let interrogator = interrogator
        let prepared = Prefetcher(items: todo, capacity: 2 * batchSize) { item in
            try interrogator.prepare(item.loadImage(), captioning: captioning, embedding: embedding)
        }
        defer { prepared.stop() }
        var finished = 0
        for start in stride(from: 0, to: todo.count, by: batchSize) {
            let batch = Array(todo[start..<min(start + batchSize, todo.count)])
            let inputs = batch.map { _ in prepared.next() }
            for (item, outcome) in zip(batch, features(of: inputs)) {
                do {
                    let record = BatchRecord(image: item.name, result: try interrogator.interrogate(outcome.get(), mode: mode, options: options))
                    if sidecar { try writeSidecar(record.summary, to: item.sidecarURL) }
                    try writer.write(record)
                    summary.succeeded += 1
                } catch {
                    fail(item.name, error, writer: writer, &summary)
                }
                finished += 1
                progress?(finished, todo.count, item.name)
            }
        }
        return summary
    }

    /// The features of a batch's prepared images, in one batch when every image
    /// goes through; else image by image, so one image's failure (a
    /// non-finite output) stays its own.
    private func features(of inputs: [Result<PreparedImage, any Error>]) -> [Result<ImageFeatures, any Error>] {
        let ready = inputs.compactMap { try? $0.get() }
        if let batch = try? interrogator.features(ofPrepared: ready) {
            var next = batch.makeIterator()
            return inputs.map { input in input.map { _ in next.next()! } }
        }
        return inputs.map { input in input.flatMap { image in Result { try interrogator.features(ofPrepared: [image])[0] } } }
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
