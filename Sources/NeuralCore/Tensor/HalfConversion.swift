// Conversions between the 16-bit float storage types and Float32.
//
// The widening conversions are branch-free integer bit manipulation over SIMD
// vectors, so they vectorise on any x86-64 or arm64 target without needing F16C.

/// Widens IEEE half-precision bit patterns to `Float`.
///
/// - Parameters:
///   - destination: `count` floats.
///   - source: `count` binary16 bit patterns.
///   - count: the number of values.
/// Exact for every input, including subnormals, infinities and NaN (payload kept).
public func convertF16ToF32(_ destination: UnsafeMutablePointer<Float>, _ source: UnsafePointer<UInt16>, count: Int) {
    var i = 0
    while i + 16 <= count {
        let h = UnsafeRawPointer(source + i).loadUnaligned(as: SIMD16<UInt16>.self)
        UnsafeMutableRawPointer(destination + i).storeBytes(of: widenF16(h), as: SIMD16<Float>.self)
        i += 16
    }
    if i < count { // the last count % 16 values through one zero-padded vector
        var h = SIMD16<UInt16>()
        for j in 0..<(count - i) { h[j] = source[i + j] }
        let o = widenF16(h)
        for j in 0..<(count - i) { destination[i + j] = o[j] }
    }
}

/// Sixteen binary16 bit patterns as floats.
///
/// Exponent and mantissa moved to a float's place and scaled by 2¹¹² (the
/// difference of the exponent biases): exact for normal and subnormal halves
/// alike. An all-ones half exponent (infinity, NaN) then gets an all-ones float
/// exponent by OR; the test for it is arithmetic ((e + 0x400) carries into bit
/// 15 only for e = 0x7C00), since comparisons to SIMD masks do not vectorise.
@inline(__always)
private func widenF16(_ half: SIMD16<UInt16>) -> SIMD16<Float> {
    typealias U = SIMD16<UInt32>
    let h = U(truncatingIfNeeded: half)
    let magnitude = unsafeBitCast((h & 0x7FFF) &<< 13, to: SIMD16<Float>.self) * Float(bitPattern: 0x7780_0000)
    var o = unsafeBitCast(magnitude, to: U.self)
    o |= (((h & 0x7C00) &+ 0x0400) &>> 15) &* 0x7F80_0000
    o |= (h & 0x8000) &<< 16
    return unsafeBitCast(o, to: SIMD16<Float>.self)
}

/// Widens bfloat16 bit patterns to `Float` (exact: a bfloat16 is the top half of a float).
///
/// - Parameters:
///   - destination: `count` floats.
///   - source: `count` bfloat16 bit patterns.
///   - count: the number of values.
public func convertBF16ToF32(_ destination: UnsafeMutablePointer<Float>, _ source: UnsafePointer<UInt16>, count: Int) {
    var i = 0
    while i + 16 <= count {
        let h = SIMD16<UInt32>(truncatingIfNeeded: UnsafeRawPointer(source + i).loadUnaligned(as: SIMD16<UInt16>.self))
        UnsafeMutableRawPointer(destination + i).storeBytes(of: unsafeBitCast(h &<< 16, to: SIMD16<Float>.self), as: SIMD16<Float>.self)
        i += 16
    }
    while i < count {
        destination[i] = Float(bitPattern: UInt32(source[i]) << 16)
        i += 1
    }
}

/// Narrows `Float` to IEEE half precision, rounding to nearest even (as PyTorch's
/// `.half()`); values beyond the range become infinities, NaN stays NaN.
///
/// - Parameters:
///   - destination: `count` binary16 bit patterns.
///   - source: `count` floats.
///   - count: the number of values.
public func convertF32ToF16(_ destination: UnsafeMutablePointer<UInt16>, _ source: UnsafePointer<Float>, count: Int) {
    for i in 0..<count {
        destination[i] = Float16(source[i]).bitPattern
    }
}

/// Narrows `Float` to bfloat16, rounding to nearest even exactly as PyTorch's
/// `.bfloat16()` does (NaN becomes the canonical quiet NaN `0x7FC0`).
///
/// - Parameters:
///   - destination: `count` bfloat16 bit patterns.
///   - source: `count` floats.
///   - count: the number of values.
public func convertF32ToBF16(_ destination: UnsafeMutablePointer<UInt16>, _ source: UnsafePointer<Float>, count: Int) {
    for i in 0..<count {
        let value = source[i]
        if value.isNaN {
            destination[i] = 0x7FC0
            continue
        }
        let bits = value.bitPattern
        let roundingBias: UInt32 = 0x7FFF + ((bits >> 16) & 1)
        destination[i] = UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
    }
}

/// Widens `count` elements of float storage type `dtype` (F32, F16 or BF16) at
/// `source` to `Float`, copying first when 16-bit data is misaligned.
public func convertToF32(_ destination: UnsafeMutablePointer<Float>, _ source: UnsafeRawPointer, dtype: DType, count: Int) {
    guard count > 0 else { return }
    switch dtype {
    case .f32:
        UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
    case .f16, .bf16:
        let convert = dtype == .f16 ? convertF16ToF32 : convertBF16ToF32
        if Int(bitPattern: source) % 2 == 0 {
            convert(destination, source.assumingMemoryBound(to: UInt16.self), count)
        } else {
            let aligned = UnsafeMutablePointer<UInt16>.allocate(capacity: count)
            defer { aligned.deallocate() }
            UnsafeMutableRawPointer(aligned).copyMemory(from: source, byteCount: count * 2)
            convert(destination, aligned, count)
        }
    default:
        preconditionFailure("convertToF32 from \(dtype)")
    }
}
