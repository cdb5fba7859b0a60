import Foundation

/// Runs `work` over `items` in order on a thread of its own, at most `capacity`
/// results ahead of the consumer: the next images of a batch run are decoded and
/// prepared while the current batch computes, with a bounded number in memory.
final class Prefetcher<Item: Sendable, Output: Sendable>: @unchecked Sendable {
    // @unchecked: `buffer`, `stopped` and the cursor are guarded by `condition`.
    private let condition = NSCondition()
    private var buffer: [Result<Output, any Error>] = []
    private var stopped = false
    private let capacity: Int

    /// Starts working through `items`, keeping at most `capacity` (≥ 1) results
    /// that ``next()`` has not taken yet.
    init(items: [Item], capacity: Int, work: @escaping @Sendable (Item) throws -> Output) {
        self.capacity = max(1, capacity)
        let thread = Thread { [self] in
            for item in items {
                condition.lock()
                while buffer.count >= self.capacity && !stopped { condition.wait() }
                let stop = stopped
                condition.unlock()
                if stop { return }
                let result = Result { try work(item) }
                condition.lock()
                buffer.append(result)
                condition.broadcast()
                condition.unlock()
            }
        }
        thread.name = "prefetch"
        thread.start()
    }

    /// The next item's result, in item order, waiting for it if needed. Call it
    /// at most once per item.
    func next() -> Result<Output, any Error> {
        condition.lock()
        defer { condition.unlock() }
        while buffer.isEmpty { condition.wait() }
        let result = buffer.removeFirst()
        condition.broadcast()
        return result
    }

    /// Stops the worker after its current item (results not taken are dropped).
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    deinit { stop() }
}
