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
import NeuralCore

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

/// Fixed-point coefficients of one resampling pass (one axis), for all output
/// samples or a contiguous window of them.
struct ResampleCoefficients {
    /// Maximum taps per output sample (row stride of `weights`).
    let ksize: Int
    /// For each output sample of the window: first source index and number of taps.
    var first: [Int]
    var count: [Int]
    /// `outputs.count * ksize` weights scaled by 2^22.
    var weights: [Int32]

    static let precisionBits = 22

    /// The most taps one output sample may take (a kernel this wide means an axis
    /// shrinks by more than 250,000×; only a degenerate strip of an image gets
    /// there). The coefficients of one output cost 12 bytes per tap while they
    /// are computed, so this bounds that memory at 12 MiB.
    static let maximumTaps = 1 << 20

    /// The most weights one coefficient table holds (16 MiB); wider windows are
    /// resized in strips.
    static let tableBudget = 1 << 22

    /// Pillow's `ksize` for resizing `inSize` samples to `outSize` with `filter`.
    static func taps(inSize: Int, outSize: Int, filter: ResampleFilter) -> Int {
        let filterScale = max(Double(Float(inSize)) / Double(outSize), 1.0)
        return Int((filter.support * filterScale).rounded(.up)) * 2 + 1
    }

    /// Port of `precompute_coeffs` + `normalize_coeffs_8bpc` for the output
    /// samples in `outputs` (default all `outSize`); each output's coefficients
    /// depend only on its own index, so a window gets exactly the values the whole
    /// table holds there. `in0`/`in1` are the box edges, which Pillow holds as C
    /// floats. Requires `ksize <= maximumTaps`.
    init(inSize: Int, in0: Float, in1: Float, outSize: Int, filter: ResampleFilter, outputs: Range<Int>? = nil) {
        let outputs = outputs ?? 0..<outSize
        var filterScale = Double(in1 - in0) / Double(outSize)
        let scale = filterScale
        if filterScale < 1.0 { filterScale = 1.0 }
        let support = filter.support * filterScale
        let ksize = Int(support.rounded(.up)) * 2 + 1
        precondition(ksize <= Self.maximumTaps, "resampling kernel of \(ksize) taps")
        self.ksize = ksize
        first = [Int](repeating: 0, count: outputs.count)
        count = [Int](repeating: 0, count: outputs.count)
        weights = [Int32](repeating: 0, count: outputs.count * ksize)

        let inverseFilterScale = 1.0 / filterScale
        var k = [Double](repeating: 0, count: ksize)
        for (slot, xx) in outputs.enumerated() {
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
                weights[slot * ksize + x] = v < 0 ? Int32(-0.5 + v * unit) : Int32(0.5 + v * unit)
            }
            first[slot] = xmin
            count[slot] = max(xmax, 0)
        }
    }

    /// The source samples the window reads (empty for an empty window).
    var sourceRange: Range<Int> {
        guard let firstIndex = first.first else { return 0..<0 }
        return firstIndex..<(first[first.count - 1] + count[count.count - 1])
    }

    /// The same coefficients reading a source that starts at `offset`.
    func shifted(by offset: Int) -> ResampleCoefficients {
        var copy = self
        for i in copy.first.indices { copy.first[i] -= offset }
        return copy
    }
}

/// Why an image cannot be resized.
public enum ResampleError: Error, LocalizedError, Equatable, CustomStringConvertible, Sendable {
    /// Resizing `from` samples to `to` along one axis needs a kernel wider than
    /// the limit (a strip thousands of times longer than the model's input).
    case kernelTooWide(from: Int, to: Int, taps: Int)
    /// A target size below 1 pixel.
    case emptyTarget(width: Int, height: Int)
    /// A source image without pixels.
    case emptyImage

    /// A readable explanation.
    public var description: String {
        switch self {
        case let .kernelTooWide(from, to, taps):
            "cannot resize \(from) pixels to \(to): the filter would need \(taps) taps per pixel "
                + "(limit \(ResampleCoefficients.maximumTaps)); the image is too elongated"
        case let .emptyTarget(width, height): "cannot resize to \(width)x\(height)"
        case .emptyImage: "cannot resize an image without pixels"
        }
    }

    /// The same as ``description``.
    public var errorDescription: String? { description }
}

extension RGBImage {
    /// Pillow's `Image.resize((width, height), filter)` on an RGB image
    /// (default box, `reducing_gap=None`), with identical output bytes.
    ///
    /// Large images are split across cores by rows; the result does not
    /// depend on the split.
    /// - Throws: ``ResampleError`` for an empty target or an axis shrunk so far
    ///   that its kernel would exceed `ResampleCoefficients.maximumTaps`.
    public func resized(width newWidth: Int, height newHeight: Int,
                        filter: ResampleFilter = .bicubic) throws -> RGBImage {
        try resized(width: newWidth, height: newHeight, filter: filter, columns: 0..<newWidth, rows: 0..<newHeight)
    }

    /// The `columns × rows` window of ``resized(width:height:filter:)``,
    /// computing only what the window needs: coefficients for its outputs,
    /// source rows and columns its taps read. Each output pixel of Pillow's
    /// passes depends only on its own coefficients and the pixels they read, so
    /// the window is byte-identical to the same region of the whole resize; the
    /// pass order is decided on the whole sizes, as Pillow decides it. Memory is
    /// bounded by the window and the source, however large the full resize.
    /// - Throws: ``ResampleError``.
    func resized(width newWidth: Int, height newHeight: Int, filter: ResampleFilter,
                 columns: Range<Int>, rows: Range<Int>) throws -> RGBImage {
        guard newWidth > 0, newHeight > 0 else { throw ResampleError.emptyTarget(width: newWidth, height: newHeight) }
        guard width > 0, height > 0 else { throw ResampleError.emptyImage }
        precondition(columns.clamped(to: 0..<newWidth) == columns && rows.clamped(to: 0..<newHeight) == rows,
                     "window outside the resized image")
        let needHorizontal = newWidth != width
        let needVertical = newHeight != height
        for (from, to, needed) in [(width, newWidth, needHorizontal), (height, newHeight, needVertical)] where needed {
            let taps = ResampleCoefficients.taps(inSize: from, outSize: to, filter: filter)
            guard taps <= ResampleCoefficients.maximumTaps else { throw ResampleError.kernelTooWide(from: from, to: to, taps: taps) }
        }
        if columns.isEmpty || rows.isEmpty { return RGBImage(width: columns.count, height: rows.count) }
        // Windows whose coefficient table would exceed the budget are done in
        // strips (each output's coefficients are its own, so strips stitch exactly).
        for (window, from, to, needed, isRows) in [(rows, height, newHeight, needVertical, true),
                                                   (columns, width, newWidth, needHorizontal, false)] where needed {
            let perStrip = max(1, ResampleCoefficients.tableBudget / ResampleCoefficients.taps(inSize: from, outSize: to, filter: filter))
            guard window.count > perStrip else { continue }
            let strips = try stride(from: window.lowerBound, to: window.upperBound, by: perStrip).map { start in
                let part = start..<min(start + perStrip, window.upperBound)
                return try resized(width: newWidth, height: newHeight, filter: filter,
                                   columns: isRows ? columns : part, rows: isRows ? part : rows)
            }
            return ImagePreprocessing.stitch(strips, vertically: isRows)
        }
        let vertical = needVertical
            ? ResampleCoefficients(inSize: height, in0: 0, in1: Float(height), outSize: newHeight, filter: filter, outputs: rows)
            : nil
        let horizontal = needHorizontal
            ? ResampleCoefficients(inSize: width, in0: 0, in1: Float(width), outSize: newWidth, filter: filter, outputs: columns)
            : nil
        // Pillow 13: vertical first if the height shrinks by more than twice as
        // many pixels as the width.
        let horizontalFirst = !((height - newHeight) > 0 && (height - newHeight) > (width - newWidth) * 2)
        // The source region the first pass reads: the rows (horizontal first) or
        // columns (vertical first) the second pass needs, and the window's own
        // extent on an axis that is not resized.
        let sourceRows = vertical?.sourceRange ?? rows
        let sourceColumns = horizontal?.sourceRange ?? columns
        if horizontalFirst {
            var current = horizontal.map { Self.horizontalPass(self, rows: sourceRows, coefficients: $0) }
                ?? ImagePreprocessing.crop(self, left: sourceColumns.lowerBound, top: sourceRows.lowerBound,
                                           width: sourceColumns.count, height: sourceRows.count)
            if let vertical { current = Self.verticalPass(current, coefficients: vertical.shifted(by: sourceRows.lowerBound)) }
            return current
        } else {
            var current = ImagePreprocessing.crop(self, left: sourceColumns.lowerBound, top: 0,
                                                  width: sourceColumns.count, height: height)
            current = vertical.map { Self.verticalPass(current, coefficients: $0) }
                ?? ImagePreprocessing.crop(current, left: 0, top: sourceRows.lowerBound, width: current.width, height: sourceRows.count)
            if let horizontal {
                current = Self.horizontalPass(current, rows: 0..<current.height, coefficients: horizontal.shifted(by: sourceColumns.lowerBound))
            }
            return current
        }
    }

    @inline(__always)
    static func clip8(_ sum: Int32) -> UInt8 {
        let v = sum >> Int32(ResampleCoefficients.precisionBits)
        return v < 0 ? 0 : (v > 255 ? 255 : UInt8(truncatingIfNeeded: v))
    }

    /// The pointers a resampling pass works with, shareable with worker threads.
    struct PassPointers: @unchecked Sendable {
        // @unchecked: workers only read `source` and the coefficients and write
        // disjoint rows of `destination`.
        let source: UnsafePointer<UInt8>
        let destination: UnsafeMutablePointer<UInt8>
        let weights: UnsafePointer<Int32>
        let first: UnsafePointer<Int>
        let count: UnsafePointer<Int>
    }

    /// A `byteCount`-byte image buffer that `body` fills, given `source`'s pixels
    /// and the coefficients.
    static func pass(_ source: RGBImage, _ coefficients: ResampleCoefficients, byteCount: Int,
                     _ body: (PassPointers) -> Void) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: byteCount)
        source.pixels.withUnsafeBufferPointer { pixels in
            out.withUnsafeMutableBufferPointer { destination in
                coefficients.weights.withUnsafeBufferPointer { weights in
                    coefficients.first.withUnsafeBufferPointer { first in
                        coefficients.count.withUnsafeBufferPointer { count in
                            body(PassPointers(source: pixels.baseAddress!, destination: destination.baseAddress!,
                                              weights: weights.baseAddress!, first: first.baseAddress!, count: count.baseAddress!))
                        }
                    }
                }
            }
        }
        return out
    }

    /// Horizontal pass over `rows` of `image`: output is `coefficients.count`
    /// wide and `rows.count` high. Port of ImagingResampleHorizontal_8bpc.
    static func horizontalPass(_ image: RGBImage, rows: Range<Int>,
                               coefficients: ResampleCoefficients) -> RGBImage {
        let outWidth = coefficients.first.count
        let outHeight = rows.count
        let inStride = image.width * 3
        let outStride = outWidth * 3
        let ksize = coefficients.ksize
        let out = pass(image, coefficients, byteCount: outWidth * outHeight * 3) { p in
            imagingParallelRows(outHeight, work: outWidth * ksize) { range in
                for yy in range {
                    let inRow = p.source + (yy + rows.lowerBound) * inStride
                    let outRow = p.destination + yy * outStride
                    for xx in 0..<outWidth {
                        let k = p.weights + xx * ksize
                        var pixel = inRow + p.first[xx] * 3
                        let half: Int32 = 1 << Int32(ResampleCoefficients.precisionBits - 1)
                        var s0 = half, s1 = half, s2 = half
                        for x in 0..<p.count[xx] {
                            let w = k[x]
                            s0 &+= Int32(pixel[0]) &* w
                            s1 &+= Int32(pixel[1]) &* w
                            s2 &+= Int32(pixel[2]) &* w
                            pixel += 3
                        }
                        outRow[3 * xx] = clip8(s0)
                        outRow[3 * xx + 1] = clip8(s1)
                        outRow[3 * xx + 2] = clip8(s2)
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
        let ksize = coefficients.ksize
        let out = pass(image, coefficients, byteCount: stride * outHeight) { p in
            imagingParallelRows(outHeight, work: stride * ksize) { range in
                let accumulator = UnsafeMutablePointer<Int32>.allocate(capacity: stride)
                defer { accumulator.deallocate() }
                for yy in range {
                    let k = p.weights + yy * ksize
                    let ymin = p.first[yy]
                    accumulator.update(repeating: 1 << Int32(ResampleCoefficients.precisionBits - 1), count: stride)
                    for y in 0..<p.count[yy] {
                        let w = k[y]
                        let row = p.source + (ymin + y) * stride
                        for i in 0..<stride {
                            accumulator[i] &+= Int32(row[i]) &* w
                        }
                    }
                    let outRow = p.destination + yy * stride
                    for i in 0..<stride {
                        outRow[i] = clip8(accumulator[i])
                    }
                }
            }
        }
        return RGBImage(width: image.width, height: outHeight, pixels: out)
    }
}

/// Runs `body` over `0..<rows` split into contiguous chunks, in parallel when
/// the total work (`rows * work` multiply-adds) is worth it.
func imagingParallelRows(_ rows: Int, work: Int, _ body: @escaping @Sendable (Range<Int>) -> Void) {
    let total = rows * max(work, 1)
    let chunks = min(Threading.threadCount, rows, max(1, total / 2_000_000))
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
