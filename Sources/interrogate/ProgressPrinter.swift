import ClipInterrogator
import Foundation

/// Renders batch progress on standard error: a bar with rate and ETA on a
/// terminal, plain lines otherwise.
final class ProgressPrinter: @unchecked Sendable {
    // @unchecked: used from one thread at a time (the batch loop and the
    // interrogator's synchronous callbacks); the lock guards the shared fields.
    private let interactive: Bool
    private let start = Date()
    private let lock = NSLock()
    private var lastDraw = Date.distantPast

    /// A printer; `interactive` nil means "standard error is a terminal".
    init(interactive: Bool? = nil) {
        self.interactive = interactive ?? (isatty(2) == 1)
    }

    /// Reports `done` of `total` images, the last being `name`.
    func images(done: Int, total: Int, name: String) {
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
    func library(_ event: InterrogatorProgress) {
        lock.lock(); defer { lock.unlock() }
        switch event {
        case .buildingLabelTable(_, _, let total) where total < LabelTable.encodingBatch:
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
        case let .chainStep(name, step, maxSteps, _):
            if interactive { FileHandle.standardError.write(Data("\r\(name): \(step)/\(maxSteps)   ".utf8)) }
        }
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return String(format: "%d:%02d", s / 60, s % 60)
    }
}
