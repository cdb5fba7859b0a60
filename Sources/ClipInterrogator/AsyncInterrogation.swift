import Dispatch
import Foundation
import NeuralModels
import Synchronization

/// One call's own progress receiver and cancellation flag, bound (as a task
/// local) to the thread that runs the call's synchronous work.
final class InterrogationCall: Sendable {
    /// The call being run on this thread, if it came through the async API.
    @TaskLocal static var current: InterrogationCall?

    /// Receives this call's progress reports.
    let progress: (@Sendable (InterrogatorProgress) -> Void)?
    private let cancelled = Atomic<Bool>(false)

    init(progress: (@Sendable (InterrogatorProgress) -> Void)?) {
        self.progress = progress
    }

    /// Asks the work to stop at its next step.
    func cancel() { cancelled.store(true, ordering: .relaxed) }

    /// Whether ``cancel()`` was called.
    var isCancelled: Bool { cancelled.load(ordering: .relaxed) }
}

extension Interrogator {
    /// Reports `event` to the configuration's receiver and to the current call's,
    /// then stops the work with `CancellationError` when the call (or the task
    /// running it) was cancelled. Every step of the pipeline (a label batch, a
    /// decoder step, a chain step) reports through here, so this is where
    /// cancellation takes effect.
    func report(_ event: InterrogatorProgress) throws {
        configuration.progress?(event)
        if let call = InterrogationCall.current {
            call.progress?(event)
            if call.isCancelled { throw CancellationError() }
        }
        try Task.checkCancellation()
    }

    /// Runs `work` on a thread of its own (the computation blocks a thread for
    /// seconds; the caller's is left free), with `progress` receiving this call's
    /// reports; cancelling the calling task stops `work` at its next step
    /// (`CancellationError`).
    func runCancellable<Value: Sendable>(progress: (@Sendable (InterrogatorProgress) -> Void)?,
                                          _ work: @escaping @Sendable () throws -> Value) async throws -> Value {
        try Task.checkCancellation()
        let call = InterrogationCall(progress: progress)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global(qos: .userInitiated).async {
                    continuation.resume(with: Result {
                        if call.isCancelled { throw CancellationError() }
                        return try InterrogationCall.$current.withValue(call) { try work() }
                    })
                }
            }
        } onCancel: {
            call.cancel()
        }
    }

    /// Interrogates `images` (one prompt for all of them) in each of `modes`
    /// from one caption and one image embedding, without blocking the calling
    /// thread.
    ///
    /// Cancelling the calling task stops the work between steps (a label
    /// batch, a caption token, a chain step) and throws `CancellationError`.
    ///
    /// - Parameters:
    ///   - images: the images; several make one prompt (the first is captioned).
    ///   - modes: the modes to run, in the order of the results.
    ///   - options: style subject, flavor counts, negative prompt, analysis size.
    ///   - progress: receives this call's progress (besides the configuration's
    ///     receiver), on the thread doing the work.
    /// - Returns: one result per mode.
    /// - Throws: `CancellationError`, ``InterrogatorError``, the models' errors.
    public func interrogate(_ images: [RGBImage], modes: [InterrogationMode], options: InterrogationOptions = .init(),
                            progress: (@Sendable (InterrogatorProgress) -> Void)? = nil) async throws -> [InterrogationResult] {
        try await runCancellable(progress: progress) { try self.interrogate(images, modes: modes, options: options) }
    }

    /// Interrogates `images` (one prompt for all of them) in `mode`, without
    /// blocking the calling thread; cancellable between steps (see
    /// ``interrogate(_:modes:options:progress:)``).
    ///
    /// - Parameters:
    ///   - images: the images; several make one prompt (the first is captioned).
    ///   - mode: the mode to run.
    ///   - options: style subject, flavor counts, negative prompt, analysis size.
    ///   - progress: receives this call's progress, on the thread doing the work.
    /// - Returns: the result.
    /// - Throws: `CancellationError`, ``InterrogatorError``, the models' errors.
    public func interrogate(_ images: [RGBImage], mode: InterrogationMode, options: InterrogationOptions = .init(),
                            progress: (@Sendable (InterrogatorProgress) -> Void)? = nil) async throws -> InterrogationResult {
        try await interrogate(images, modes: [mode], options: options, progress: progress)[0]
    }

    /// Interrogates one image in `mode`, without blocking the calling thread;
    /// cancellable between steps (see ``interrogate(_:modes:options:progress:)``).
    ///
    /// - Parameters:
    ///   - image: the image.
    ///   - mode: the mode to run (default: best, the reference's default).
    ///   - options: style subject, flavor counts, negative prompt, analysis size.
    ///   - progress: receives this call's progress, on the thread doing the work.
    /// - Returns: the result.
    /// - Throws: `CancellationError`, ``InterrogatorError``, the models' errors.
    public func interrogate(_ image: RGBImage, mode: InterrogationMode = .best, options: InterrogationOptions = .init(),
                            progress: (@Sendable (InterrogatorProgress) -> Void)? = nil) async throws -> InterrogationResult {
        try await interrogate([image], modes: [mode], options: options, progress: progress)[0]
    }

    /// Interrogates the JPEG or PNG file at `url` in `mode`, without blocking
    /// the calling thread; cancellable between steps (see
    /// ``interrogate(_:modes:options:progress:)``).
    ///
    /// - Parameters:
    ///   - url: a file URL of a JPEG or PNG image (decoded as Pillow's
    ///     `Image.open(path).convert("RGB")`).
    ///   - mode: the mode to run (default: best, the reference's default).
    ///   - options: style subject, flavor counts, negative prompt, analysis size.
    ///   - progress: receives this call's progress, on the thread doing the work.
    /// - Returns: the result.
    /// - Throws: `CancellationError`, `ImageDecodingError` naming the file,
    ///   ``InterrogatorError``, the models' errors.
    public func interrogate(contentsOf url: URL, mode: InterrogationMode = .best, options: InterrogationOptions = .init(),
                            progress: (@Sendable (InterrogatorProgress) -> Void)? = nil) async throws -> InterrogationResult {
        try await runCancellable(progress: progress) {
            try self.interrogate([try ImageDecoder.decode(contentsOf: url)], modes: [mode], options: options)[0]
        }
    }

    /// Loads (or embeds and caches) the label tables now rather than on the
    /// first interrogation, without blocking the calling thread; cancelling the
    /// calling task stops embedding between label batches.
    ///
    /// - Parameter progress: receives the label-embedding progress, on the
    ///   thread doing the work.
    /// - Throws: `CancellationError`, the cache's and the encoder's errors.
    public func prepareLabelTables(progress: (@Sendable (InterrogatorProgress) -> Void)? = nil) async throws {
        _ = try await runCancellable(progress: progress) { _ = try self.labelTables() }
    }
}
