import Foundation

/// Backing memory of a ``Tensor``: either an owned, 64-byte-aligned allocation, or
/// a range of a memory-mapped file whose mapping the storage keeps alive.
@usableFromInline
final class TensorStorage: @unchecked Sendable {
    // Sendable: the bytes are only written through `Tensor`'s mutating accessors,
    // which copy first unless the storage is uniquely referenced and owned.
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let byteCount: Int
    /// The object that owns the memory (a ``MappedFile``), or nil when owned here.
    let owner: AnyObject?

    init(allocating byteCount: Int) {
        self.byteCount = byteCount
        self.base = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        self.owner = nil
    }

    init(viewing base: UnsafeRawPointer, byteCount: Int, owner: AnyObject) {
        self.base = UnsafeMutableRawPointer(mutating: base)
        self.byteCount = byteCount
        self.owner = owner
    }

    var isOwned: Bool { owner == nil }

    deinit {
        if owner == nil { base.deallocate() }
    }
}

/// An n-dimensional array with a shape and contiguous row-major storage.
///
/// `Tensor` is a value type. Its bytes live either in an owned buffer or in a
/// read-only view into a memory-mapped safetensors file; a view keeps the mapping
/// alive for as long as any tensor refers to it, and the first mutation copies it
/// into owned memory (copy-on-write). There is no autograd.
///
/// The element type is any ``DType``; F16 and BF16 are storage types that convert
/// to `Float` with ``floats()`` or ``converted(to:)``.
public struct Tensor: Sendable {
    /// The size of each dimension, outermost first. `[]` is a scalar.
    public private(set) var shape: [Int]
    /// The element type of the storage.
    public let dtype: DType
    @usableFromInline var storage: TensorStorage

    /// The number of elements (the product of ``shape``; 1 for a scalar).
    public var count: Int { shape.reduce(1, *) }
    /// The number of bytes the elements occupy.
    public var byteCount: Int { count * dtype.byteSize }
    /// Whether the bytes are a view into a memory-mapped file rather than owned memory.
    public var isMapped: Bool { !storage.isOwned }

    init(shape: [Int], dtype: DType, storage: TensorStorage) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(shape.reduce(1, *) * dtype.byteSize <= storage.byteCount, "storage too small for \(shape)")
        self.shape = shape
        self.dtype = dtype
        self.storage = storage
    }

    /// Creates a zero-filled tensor.
    public init(zeros shape: [Int], dtype: DType = .f32) {
        let bytes = shape.reduce(1, *) * dtype.byteSize
        let storage = TensorStorage(allocating: bytes)
        storage.base.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        self.init(shape: shape, dtype: dtype, storage: storage)
    }

    /// Creates an F32 tensor from its elements in row-major order.
    public init(shape: [Int], scalars: [Float]) {
        precondition(scalars.count == shape.reduce(1, *), "\(scalars.count) scalars for shape \(shape)")
        let storage = TensorStorage(allocating: scalars.count * 4)
        scalars.withUnsafeBytes { storage.base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        self.init(shape: shape, dtype: .f32, storage: storage)
    }

    /// Creates a tensor by copying raw little-endian element bytes.
    public init(shape: [Int], dtype: DType, bytes: UnsafeRawBufferPointer) {
        let expected = shape.reduce(1, *) * dtype.byteSize
        precondition(bytes.count == expected, "\(bytes.count) bytes for \(dtype) \(shape)")
        let storage = TensorStorage(allocating: expected)
        if expected > 0 { storage.base.copyMemory(from: bytes.baseAddress!, byteCount: expected) }
        self.init(shape: shape, dtype: dtype, storage: storage)
    }

    /// A tensor that views `byteCount` bytes at `base`, kept valid by `owner`.
    init(shape: [Int], dtype: DType, viewing base: UnsafeRawPointer, owner: AnyObject) {
        let bytes = shape.reduce(1, *) * dtype.byteSize
        self.init(shape: shape, dtype: dtype, storage: TensorStorage(viewing: base, byteCount: bytes, owner: owner))
    }

    /// The same elements with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        var copy = self
        copy.shape = newShape
        return copy
    }

    /// Calls `body` with the raw element bytes.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage.base, count: byteCount))
    }

    /// The elements widened to `Float`. Requires a float storage type.
    public func floats() -> [Float] {
        precondition(dtype.isFloatStorage, "floats() on a \(dtype) tensor")
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            copyFloats(into: buffer.baseAddress!)
            initialized = count
        }
    }

    /// Writes the elements, widened to `Float`, to `destination` (`count` floats).
    public func copyFloats(into destination: UnsafeMutablePointer<Float>) {
        precondition(dtype.isFloatStorage, "copyFloats on a \(dtype) tensor")
        convertToF32(destination, storage.base, dtype: dtype, count: count)
    }

    /// The elements widened to `Int64`. Requires an integer or BOOL dtype.
    public func integers() -> [Int64] {
        let raw = UnsafeRawPointer(storage.base)
        return (0..<count).map { i -> Int64 in
            switch dtype {
            case .bool, .u8: Int64(raw.load(fromByteOffset: i, as: UInt8.self))
            case .i8: Int64(raw.load(fromByteOffset: i, as: Int8.self))
            case .i16: Int64(raw.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))
            case .u16: Int64(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            case .i32: Int64(raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
            case .u32: Int64(raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
            case .i64: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)
            case .u64: Int64(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
            default: preconditionFailure("integers() on a \(dtype) tensor")
            }
        }
    }

    /// The tensor in another float storage type: F32 widening is exact, narrowing
    /// rounds to nearest even as PyTorch does. Returns `self` when already `dtype`.
    public func converted(to target: DType) -> Tensor {
        precondition(dtype.isFloatStorage && target.isFloatStorage, "conversion \(dtype) → \(target)")
        if target == dtype { return self }
        if target == .f32 { return asF32() }
        let wide = asF32()
        let result = Tensor(shape: shape, dtype: target, storage: TensorStorage(allocating: count * 2))
        let source = UnsafePointer(wide.storage.base.assumingMemoryBound(to: Float.self))
        let destination = result.storage.base.assumingMemoryBound(to: UInt16.self)
        if target == .f16 {
            convertF32ToF16(destination, source, count: count)
        } else {
            convertF32ToBF16(destination, source, count: count)
        }
        return result
    }

    /// The elements as F32 in aligned memory: `self` when that is already so (no
    /// copy, a file view stays a view), an owned widened copy otherwise.
    public func asF32() -> Tensor {
        if dtype == .f32 && Int(bitPattern: storage.base) % MemoryLayout<Float>.alignment == 0 { return self }
        let result = Tensor(shape: shape, dtype: .f32, storage: TensorStorage(allocating: count * 4))
        copyFloats(into: result.storage.base.assumingMemoryBound(to: Float.self))
        return result
    }

    /// The address of the F32 elements, for kernels. Requires aligned F32 storage
    /// (see ``asF32()``); valid only while this tensor, or a copy sharing its
    /// storage, is alive (use `withExtendedLifetime` where that is not obvious).
    public var unsafeFloatPointer: UnsafePointer<Float> {
        precondition(dtype == .f32 && Int(bitPattern: storage.base) % MemoryLayout<Float>.alignment == 0,
                     "unsafeFloatPointer needs aligned F32 storage, have \(self)")
        return UnsafePointer(storage.base.assumingMemoryBound(to: Float.self))
    }

    /// Creates an F32 tensor whose elements `initializer` writes (all `count` of them).
    public init(shape: [Int], initializingWith initializer: (UnsafeMutablePointer<Float>) throws -> Void) rethrows {
        let storage = TensorStorage(allocating: shape.reduce(1, *) * 4)
        try initializer(storage.base.assumingMemoryBound(to: Float.self))
        self.init(shape: shape, dtype: .f32, storage: storage)
    }

    /// Calls `body` with the elements as aligned `Float`s, widening (into a
    /// temporary) when the storage is F16/BF16 or misaligned.
    public func withUnsafeFloats<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        let f32 = asF32()
        return try body(UnsafeBufferPointer(start: f32.storage.base.assumingMemoryBound(to: Float.self), count: count))
    }

    /// Calls `body` with mutable access to the F32 elements, first copying them into
    /// owned memory if the storage is shared or a file view.
    public mutating func withUnsafeMutableFloats<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        precondition(dtype == .f32, "withUnsafeMutableFloats on a \(dtype) tensor")
        if !(storage.isOwned && isKnownUniquelyReferenced(&storage)) {
            let copy = TensorStorage(allocating: byteCount)
            if byteCount > 0 { copy.base.copyMemory(from: storage.base, byteCount: byteCount) }
            storage = copy
        }
        return try body(UnsafeMutableBufferPointer(start: storage.base.assumingMemoryBound(to: Float.self), count: count))
    }
}

extension Tensor: CustomStringConvertible {
    /// A short summary: dtype, shape and whether the storage is a file view.
    public var description: String {
        "Tensor(\(dtype.rawValue), \(shape)\(isMapped ? ", mapped" : ""))"
    }
}

extension Tensor {
    /// Element-wise `self += other` (same shape, F32): the residual connection.
    public mutating func add(_ other: Tensor) {
        precondition(other.shape == shape, "add: \(shape) vs \(other.shape)")
        let source = other.asF32()
        withUnsafeMutableFloats { y in
            withExtendedLifetime(source) { addResidual(y.baseAddress!, source.unsafeFloatPointer, count: y.count) }
        }
    }
}

extension Tensor {
    /// Whether every element is a finite number (no NaN, no ±infinity). Integer
    /// tensors are always finite; F16/BF16 are checked by their bit patterns.
    public var isFinite: Bool {
        /// Whether no element of `T` bits has all of `exponent`'s bits set.
        func noneHasFullExponent<T: FixedWidthInteger>(_: T.Type, _ exponent: T) -> Bool {
            let raw = UnsafeRawPointer(storage.base)
            for i in 0..<count where raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self) & exponent == exponent {
                return false
            }
            return true
        }
        switch dtype {
        case .f32: return noneHasFullExponent(UInt32.self, 0x7F80_0000)
        case .f64: return noneHasFullExponent(UInt64.self, 0x7FF0_0000_0000_0000)
        case .f16: return noneHasFullExponent(UInt16.self, 0x7C00)
        case .bf16: return noneHasFullExponent(UInt16.self, 0x7F80)
        default: return true
        }
    }
}
