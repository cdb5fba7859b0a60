// Pillow's convolution resampling for 8-bit images, bit for bit.
//
// Port of Pillow 13.0.0 src/libImaging/Resample.c (ImagingResample,
// precompute_coeffs, normalize_coeffs_8bpc, ImagingResample{Horizontal,Vertical}_8bpc):
// - the filter is stretched by the scale factor when reducing (antialiasing);
// - coefficients are computed in double, normalised by their sum, then turned
//   into Int32 with PRECISION_BITS = 22 by rounding half away from zero;
// - each pass accumulates in Int32 from 1 << 21 and clips `sum >> 22` to 0...255;
// - the horizontal pass runs first and only over the source rows the vertical
//   pass will read, unless the height shrinks by more than twice as many
//   pixels as the width, in which case Pillow 13 runs the vertical pass first
//   (over all columns). Pillow 12 and earlier always ran horizontal first; the
//   two orders differ by one level on some pixels.
//
// `Image.resize(size, BICUBIC)` reaches this directly for RGB images:
// `reducing_gap` defaults to None, so no `reduce()` pre-pass, and the box is
// the whole image.

import Dispatch
import Foundation

/// The convolution filters of Pillow's `Image.resize` (all but NEAREST).
public enum ResampleFilter: Sendable, Equatable {
    case box, bilinear, hamming, bicubic, lanczos

    /// Pillow's integer constants (`Image.Resampling`), as stored in
    /// `preprocessor_config.json` under `resample`. `nil` for NEAREST (0) and
    /// for values that are not convolution filters.
    public init?(pillowCode: Int) {
        switch pillowCode {
        case 1: self = .lanczos
        case 2: self = .bilinear
        case 3: self = .bicubic
        case 4: self = .box
        case 5: self = .hamming
        default: return nil
        }
    }

    /// Half-width of the kernel at scale 1.
    var support: Double {
        switch self {
        case .box: return 0.5
        case .bilinear, .hamming: return 1.0
        case .bicubic: return 2.0
        case .lanczos: return 3.0
        }
    }

    /// The kernel, with Pillow's exact expressions (so doubles round the same).
    func weight(_ xIn: Double) -> Double {
        switch self {
        case .box:
            return (xIn > -0.5 && xIn <= 0.5) ? 1.0 : 0.0
        case .bilinear:
            let x = xIn < 0 ? -xIn : xIn
            return x < 1.0 ? 1.0 - x : 0.0
        case .hamming:
            var x = xIn < 0 ? -xIn : xIn
            if x == 0.0 { return 1.0 }
            if x >= 1.0 { return 0.0 }
            x = x * Double.pi
            // 0.54f and 0.46f are float literals in Pillow's C.
            return sin(x) / x * (Double(Float(0.54)) + Double(Float(0.46)) * cos(x))
        case .bicubic:
            // a = -0.5: ((a + 2) x - (a + 3)) x x + 1  and  (((x - 5) x + 8) x - 4) a
            let a = -0.5
            let x = xIn < 0 ? -xIn : xIn
            if x < 1.0 { return ((a + 2.0) * x - (a + 3.0)) * x * x + 1 }
            if x < 2.0 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0.0
        case .lanczos:
            if -3.0 <= xIn && xIn < 3.0 {
                return Self.sinc(xIn) * Self.sinc(xIn / 3)
            }
            return 0.0
        }
    }

    private static func sinc(_ xIn: Double) -> Double {
        if xIn == 0.0 { return 1.0 }
        let x = xIn * Double.pi
        return sin(x) / x
    }
}

/// Fixed-point coefficients of one resampling pass (one axis).
struct ResampleCoefficients {
    /// Maximum taps per output sample (row stride of `weights`).
    let ksize: Int
    /// For each output sample: first source index and number of taps.
    var first: [Int]
    var count: [Int]
    /// `outSize * ksize` weights scaled by 2^22.
    var weights: [Int32]

    static let precisionBits = 22

    /// Port of `precompute_coeffs` + `normalize_coeffs_8bpc`. `in0`/`in1` are
    /// the box edges, which Pillow holds as C floats.
    init(inSize: Int, in0: Float, in1: Float, outSize: Int, filter: ResampleFilter) {
        var filterScale = Double(in1 - in0) / Double(outSize)
        let scale = filterScale
        if filterScale < 1.0 { filterScale = 1.0 }
        let support = filter.support * filterScale
        let ksize = Int(support.rounded(.up)) * 2 + 1
        self.ksize = ksize
        first = [Int](repeating: 0, count: outSize)
        count = [Int](repeating: 0, count: outSize)
        weights = [Int32](repeating: 0, count: outSize * ksize)

        let inverseFilterScale = 1.0 / filterScale
        var k = [Double](repeating: 0, count: ksize)
        for xx in 0..<outSize {
            let center = Double(in0) + (Double(xx) + 0.5) * scale
            var ww = 0.0
            // (int) truncates toward zero, like Int(_: Double).
            var xmin = Int(center - support + 0.5)
            if xmin < 0 { xmin = 0 }
            var xmax = Int(center + support + 0.5)
            if xmax > inSize { xmax = inSize }
            xmax -= xmin
            for x in 0..<max(xmax, 0) {
                let w = filter.weight((Double(x + xmin) - center + 0.5) * inverseFilterScale)
                k[x] = w
                ww += w
            }
            if ww != 0.0 {
                for x in 0..<max(xmax, 0) { k[x] /= ww }
            }
            let unit = Double(1 << Self.precisionBits)
            for x in 0..<max(xmax, 0) {
                let v = k[x]
                weights[xx * ksize + x] = v < 0 ? Int32(-0.5 + v * unit) : Int32(0.5 + v * unit)
            }
            first[xx] = xmin
            count[xx] = max(xmax, 0)
        }
    }
}

extension RGBImage {
    /// Pillow's `Image.resize((width, height), filter)` on an RGB image
    /// (default box, `reducing_gap=None`), with identical output bytes.
    ///
    /// Large images are split across cores by rows; the result does not
    /// depend on the split.
    public func resized(width newWidth: Int, height newHeight: Int,
                        filter: ResampleFilter = .bicubic) -> RGBImage {
        precondition(newWidth > 0 && newHeight > 0, "resize target must be at least 1x1")
        precondition(width > 0 && height > 0, "cannot resize an empty image")
        if newWidth == width && newHeight == height {
            return self  // Image.resize returns a copy when size and box match
        }
        let needHorizontal = newWidth != width
        let needVertical = newHeight != height
        // Pillow 13: vertical first if the height shrinks by more than twice
        // as many pixels as the width.
        let horizontalFirst = !((height - newHeight) > 0 && (height - newHeight) > (width - newWidth) * 2)

        let vertical = ResampleCoefficients(inSize: height, in0: 0, in1: Float(height),
                                            outSize: newHeight, filter: filter)
        let horizontal = needHorizontal
            ? ResampleCoefficients(inSize: width, in0: 0, in1: Float(width), outSize: newWidth, filter: filter)
            : nil

        if horizontalFirst {
            var current = self
            var verticalCoefficients = vertical
            if let horizontal {
                // Only the source rows the vertical pass reads.
                let firstRow = vertical.first[0]
                let lastRow = vertical.first[newHeight - 1] + vertical.count[newHeight - 1]
                for i in 0..<newHeight { verticalCoefficients.first[i] -= firstRow }
                current = Self.horizontalPass(self, rows: firstRow..<lastRow, coefficients: horizontal)
            }
            if needVertical {
                current = Self.verticalPass(current, coefficients: verticalCoefficients)
            }
            return current
        } else {
            var current = self
            if needVertical {
                current = Self.verticalPass(current, coefficients: vertical)
            }
            if let horizontal {
                current = Self.horizontalPass(current, rows: 0..<current.height, coefficients: horizontal)
            }
            return current
        }
    }

    @inline(__always)
    static func clip8(_ sum: Int32) -> UInt8 {
        let v = sum >> Int32(ResampleCoefficients.precisionBits)
        return v < 0 ? 0 : (v > 255 ? 255 : UInt8(truncatingIfNeeded: v))
    }

    /// Horizontal pass over `rows` of `image`: output is `coefficients.count`
    /// wide and `rows.count` high. Port of ImagingResampleHorizontal_8bpc.
    static func horizontalPass(_ image: RGBImage, rows: Range<Int>,
                               coefficients: ResampleCoefficients) -> RGBImage {
        let outWidth = coefficients.first.count
        let outHeight = rows.count
        let inStride = image.width * 3
        let outStride = outWidth * 3
        var out = [UInt8](repeating: 0, count: outWidth * outHeight * 3)
        let ksize = coefficients.ksize
        image.pixels.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { destination in
                coefficients.weights.withUnsafeBufferPointer { weights in
                    coefficients.first.withUnsafeBufferPointer { firsts in
                        coefficients.count.withUnsafeBufferPointer { counts in
                            let src = ImagingReadPointer(source.baseAddress!)
                            let dst = ImagingWritePointer(destination.baseAddress!)
                            let kk = ImagingReadPointer(weights.baseAddress!)
                            let fs = ImagingReadPointer(firsts.baseAddress!)
                            let cs = ImagingReadPointer(counts.baseAddress!)
                            imagingParallelRows(outHeight, work: outWidth * ksize) { range in
                                for yy in range {
                                    let inRow = src.pointer + (yy + rows.lowerBound) * inStride
                                    let outRow = dst.pointer + yy * outStride
                                    for xx in 0..<outWidth {
                                        let k = kk.pointer + xx * ksize
                                        var p = inRow + fs.pointer[xx] * 3
                                        let half: Int32 = 1 << Int32(ResampleCoefficients.precisionBits - 1)
                                        var s0 = half, s1 = half, s2 = half
                                        for x in 0..<cs.pointer[xx] {
                                            let w = k[x]
                                            s0 &+= Int32(p[0]) &* w
                                            s1 &+= Int32(p[1]) &* w
                                            s2 &+= Int32(p[2]) &* w
                                            p += 3
                                        }
                                        outRow[3 * xx] = clip8(s0)
                                        outRow[3 * xx + 1] = clip8(s1)
                                        outRow[3 * xx + 2] = clip8(s2)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return RGBImage(width: outWidth, height: outHeight, pixels: out)
    }

    /// Vertical pass: output is `image.width` wide and `coefficients.count`
    /// high. Port of ImagingResampleVertical_8bpc; the sum over taps is
    /// reordered row by row, which integer addition allows.
    static func verticalPass(_ image: RGBImage, coefficients: ResampleCoefficients) -> RGBImage {
        let outHeight = coefficients.first.count
        let stride = image.width * 3
        var out = [UInt8](repeating: 0, count: stride * outHeight)
        let ksize = coefficients.ksize
        image.pixels.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { destination in
                coefficients.weights.withUnsafeBufferPointer { weights in
                    coefficients.first.withUnsafeBufferPointer { firsts in
                        coefficients.count.withUnsafeBufferPointer { counts in
                            let src = ImagingReadPointer(source.baseAddress!)
                            let dst = ImagingWritePointer(destination.baseAddress!)
                            let kk = ImagingReadPointer(weights.baseAddress!)
                            let fs = ImagingReadPointer(firsts.baseAddress!)
                            let cs = ImagingReadPointer(counts.baseAddress!)
                            imagingParallelRows(outHeight, work: stride * ksize) { range in
                                let accumulator = UnsafeMutablePointer<Int32>.allocate(capacity: stride)
                                defer { accumulator.deallocate() }
                                for yy in range {
                                    let k = kk.pointer + yy * ksize
                                    let ymin = fs.pointer[yy]
                                    accumulator.update(repeating: 1 << Int32(ResampleCoefficients.precisionBits - 1),
                                                       count: stride)
                                    for y in 0..<cs.pointer[yy] {
                                        let w = k[y]
                                        let row = src.pointer + (ymin + y) * stride
                                        for i in 0..<stride {
                                            accumulator[i] &+= Int32(row[i]) &* w
                                        }
                                    }
                                    let outRow = dst.pointer + yy * stride
                                    for i in 0..<stride {
                                        outRow[i] = clip8(accumulator[i])
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return RGBImage(width: image.width, height: outHeight, pixels: out)
    }
}

/// A pointer handed to worker threads that only read through it.
struct ImagingReadPointer<T>: @unchecked Sendable {
    let pointer: UnsafePointer<T>
    init(_ pointer: UnsafePointer<T>) { self.pointer = pointer }
}

/// A pointer handed to worker threads that write disjoint parts of it.
struct ImagingWritePointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}

/// Runs `body` over `0..<rows` split into contiguous chunks, in parallel when
/// the total work (`rows * work` multiply-adds) is worth it.
func imagingParallelRows(_ rows: Int, work: Int, _ body: @escaping @Sendable (Range<Int>) -> Void) {
    let cores = ProcessInfo.processInfo.activeProcessorCount
    let total = rows * max(work, 1)
    let chunks = min(cores, rows, max(1, total / 2_000_000))
    if chunks <= 1 {
        body(0..<rows)
        return
    }
    DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
        let start = rows * chunk / chunks
        let end = rows * (chunk + 1) / chunks
        body(start..<end)
    }
}
