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

/// Renders batch progress on standard error: a bar with rate and ETA on a
/// terminal, plain lines otherwise.
public final class ProgressPrinter: @unchecked Sendable {
    // @unchecked: used from one thread at a time (the batch loop and the
    // interrogator's synchronous callbacks); the lock guards the shared fields.
    private let interactive: Bool
    private let start = Date()
    private let lock = NSLock()
    private var lastDraw = Date.distantPast

    /// A printer; `interactive` nil means "standard error is a terminal".
    public init(interactive: Bool? = nil) {
        self.interactive = interactive ?? (isatty(2) == 1)
    }

    /// Reports `done` of `total` images, the last being `name`.
    public func images(done: Int, total: Int, name: String) {
        lock.lock(); defer { lock.unlock() }
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        if interactive {
            let width = 30
            let filled = total > 0 ? width * done / total : width
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            let line = String(format: "\r[%@] %d/%d  %.2f img/s  ETA %@  ", bar, done, total, rate, Self.clock(eta))
            FileHandle.standardError.write(Data(line.utf8))
            if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else {
            FileHandle.standardError.write(Data("[\(done)/\(total)] \(name)\n".utf8))
        }
    }

    /// Reports library progress (label tables, caption tokens, chain steps);
    /// on a terminal as a transient status line, otherwise only table building.
    public func library(_ event: InterrogatorProgress) {
        lock.lock(); defer { lock.unlock() }
        switch event {
        case .buildingLabelTable(_, _, let total) where total < TableBuilder.encodingBatch:
            // Smaller tables embed in one quick batch: reporting them is noise.
            break
        case let .buildingLabelTable(name, done, total):
            if interactive {
                FileHandle.standardError.write(Data("\rembedding \(name) labels: \(done)/\(total)   ".utf8))
                if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
            } else if done == total {
                FileHandle.standardError.write(Data("embedded \(total) \(name) labels\n".utf8))
            }
        case let .captioning(token, maxTokens):
            if interactive && Date().timeIntervalSince(lastDraw) > 0.1 {
                FileHandle.standardError.write(Data("\rcaption: token \(token)/\(maxTokens)   ".utf8))
                lastDraw = Date()
            }
        case let .chainStep(name, step, maxSteps):
            if interactive { FileHandle.standardError.write(Data("\r\(name): \(step)/\(maxSteps)   ".utf8)) }
        }
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return String(format: "%d:%02d", s / 60, s % 60)
    }
}
