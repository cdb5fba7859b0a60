#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Scratch memory for kernels and layers, reused from call to call instead of
/// allocated in the hot loop (attention score blocks, im2col patches, widened
/// label blocks).
///
/// Each thread has its own arena, so a shared model can run on many threads at
/// once. Scratch is a stack: a call made while another's scratch is in use (an
/// attention block inside a layer that holds patches, say) gets memory of its
/// own at the next level. Each level keeps its largest buffer for reuse, so a
/// thread holds at most the high-water mark of what it asked for at once; the
/// arena is freed when the thread ends.
public enum Workspace {
    /// Runs `body` with `count` floats of uninitialised scratch that stay valid
    /// until `body` returns.
    public static func withScratch<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        let arena = ScratchArena.current
        let buffer = arena.push(max(count, 1))
        defer { arena.pop() }
        return try body(buffer)
    }

    /// Floats this thread's arena holds for reuse (all levels).
    public static var retainedFloats: Int { ScratchArena.current.capacities.reduce(0, +) }
}

/// One thread's stack of reusable buffers (see ``Workspace``).
final class ScratchArena {
    private var buffers: [UnsafeMutablePointer<Float>] = []
    private(set) var capacities: [Int] = []
    private var depth = 0

    deinit {
        for buffer in buffers { buffer.deallocate() }
    }

    func push(_ count: Int) -> UnsafeMutablePointer<Float> {
        if depth == buffers.count {
            buffers.append(.allocate(capacity: count))
            capacities.append(count)
        } else if capacities[depth] < count {
            buffers[depth].deallocate()
            buffers[depth] = .allocate(capacity: count)
            capacities[depth] = count
        }
        depth += 1
        return buffers[depth - 1]
    }

    func pop() {
        depth -= 1
    }

    /// The calling thread's arena, made on first use and released when the thread exits.
    static var current: ScratchArena {
        if let existing = pthread_getspecific(key) {
            return Unmanaged<ScratchArena>.fromOpaque(existing).takeUnretainedValue()
        }
        let arena = ScratchArena()
        pthread_setspecific(key, Unmanaged.passRetained(arena).toOpaque())
        return arena
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key) { pointer in
            #if canImport(Darwin)
            Unmanaged<ScratchArena>.fromOpaque(pointer).release()
            #else
            if let pointer { Unmanaged<ScratchArena>.fromOpaque(pointer).release() }
            #endif
        }
        precondition(status == 0, "pthread_key_create failed (\(status)): the process is out of thread-local keys")
        return key
    }()
}
