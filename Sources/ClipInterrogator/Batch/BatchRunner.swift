import Foundation
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

/// Runs an interrogator over many images: results stream to a ``ResultWriter``
/// as each image finishes, one bad image is reported and skipped without
/// stopping the batch, and images a resumed output already holds are skipped.
public struct BatchRunner {
    /// The interrogator.
    public let interrogator: Interrogator
    /// The mode to run.
    public let mode: InterrogationMode
    /// Options for every image.
    public let options: InterrogationOptions
    /// Also write each prompt to a `.txt` file next to its image.
    public let sidecar: Bool
    /// Receives (images finished, images to do, the image just finished).
    public let progress: ((Int, Int, String) -> Void)?

    /// A runner for `interrogator` in `mode`.
    public init(interrogator: Interrogator, mode: InterrogationMode, options: InterrogationOptions = .init(),
                sidecar: Bool = false, progress: ((Int, Int, String) -> Void)? = nil) {
        self.interrogator = interrogator
        self.mode = mode
        self.options = options
        self.sidecar = sidecar
        self.progress = progress
    }

    /// Interrogates each item on its own, writing results as they finish.
    public func run(_ items: [BatchItem], writer: ResultWriter) -> BatchSummary {
        var summary = BatchSummary()
        let done = writer.completedImages
        let todo = items.filter { !done.contains($0.name) }
        summary.skipped = items.count - todo.count
        for (index, item) in todo.enumerated() {
            do {
                let image = try ImageDecoder.decode(contentsOf: item.url)
                let result = try interrogator.interrogate([image], mode: mode, options: options)
                let record = BatchRecord(image: item.name, result: result)
                try writer.write(record)
                if sidecar {
                    let text = Data((record.summary + "\n").utf8)
                    try text.write(to: item.url.deletingPathExtension().appendingPathExtension("txt"), options: .atomic)
                }
                summary.succeeded += 1
            } catch {
                summary.failures.append(.init(image: item.name, reason: String(describing: error)))
            }
            progress?(index + 1, todo.count, item.name)
        }
        return summary
    }

    /// Interrogates all items together (one prompt for the mean of their
    /// embeddings; the first image is captioned), written as one record.
    public func runCombined(_ items: [BatchItem], writer: ResultWriter) -> BatchSummary {
        var summary = BatchSummary()
        var images: [RGBImage] = []
        for item in items {
            do {
                images.append(try ImageDecoder.decode(contentsOf: item.url))
            } catch {
                summary.failures.append(.init(image: item.name, reason: String(describing: error)))
            }
        }
        guard !images.isEmpty else { return summary }
        do {
            let result = try interrogator.interrogate(images, mode: mode, options: options)
            try writer.write(BatchRecord(image: items.map(\.name).joined(separator: "+"), result: result))
            summary.succeeded = images.count
        } catch {
            summary.failures.append(.init(image: items.map(\.name).joined(separator: "+"), reason: String(describing: error)))
        }
        progress?(1, 1, "combined")
        return summary
    }
}
