/// Rearranges non-overlapping `P×P` patches of a CHW image into rows (im2col for a
/// convolution whose stride equals its kernel):
/// `patches[py·(W/P) + px, c·P² + ky·P + kx] = image[c, py·P + ky, px·P + kx]`.
/// The column order matches a PyTorch `Conv2d` weight `[O, C, P, P]` flattened to
/// `[O, C·P²]`. Trailing rows/columns that do not fill a patch are dropped, as the
/// convolution drops them.
///
/// - Parameters:
///   - patches: `[(H/P)·(W/P), C·P²]`.
///   - image: `[C, H, W]`.
///   - channels: `C`.
///   - height: `H`.
///   - width: `W`.
///   - patch: `P`, the patch side.
public func im2colPatches(
    _ patches: UnsafeMutablePointer<Float>, _ image: UnsafePointer<Float>,
    channels: Int, height: Int, width: Int, patch: Int
) {
    let gridH = height / patch, gridW = width / patch
    let rowLength = channels * patch * patch
    for py in 0..<gridH {
        for px in 0..<gridW {
            let row = patches + (py * gridW + px) * rowLength
            for c in 0..<channels {
                for ky in 0..<patch {
                    let source = image + (c * height + py * patch + ky) * width + px * patch
                    (row + (c * patch + ky) * patch).update(from: source, count: patch)
                }
            }
        }
    }
}

/// Patch embedding (a `Conv2d` with stride = kernel = `P`) as im2col + one GEMM:
/// `y[N, O] = patches[N, C·P²] · Wᵀ + b` for each image.
///
/// - Parameters:
///   - y: `[B, N, O]` with `N = (H/P)·(W/P)`, the layout of Hugging Face's
///     `conv(x).flatten(2).transpose(1, 2)`.
///   - images: `[B, C, H, W]`.
///   - weight: `[O, C·P²]` (the conv weight `[O, C, P, P]` flattened).
///   - bias: `[O]` or nil (CLIP's patch conv has none, BLIP's has one).
///   - batch: `B`.
///   - channels: `C`.
///   - height: `H`.
///   - width: `W`.
///   - patch: `P`, the patch side.
///   - outChannels: `O`.
///   - scratch: `N·C·P²` floats.
public func patchEmbedding(
    _ y: UnsafeMutablePointer<Float>, _ images: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    batch: Int, channels: Int, height: Int, width: Int, patch: Int, outChannels: Int,
    scratch: UnsafeMutablePointer<Float>
) {
    let n = (height / patch) * (width / patch)
    let rowLength = channels * patch * patch
    for b in 0..<batch {
        im2colPatches(scratch, images + b * channels * height * width,
                      channels: channels, height: height, width: width, patch: patch)
        linearForward(y + b * n * outChannels, scratch, weight: weight, bias: bias,
                      rows: n, inFeatures: rowLength, outFeatures: outChannels)
    }
}

/// Naive twin of ``patchEmbedding(_:_:weight:bias:batch:channels:height:width:patch:outChannels:scratch:)``:
/// the direct convolution loops, in `Double`.
public func patchEmbeddingNaive(
    _ y: UnsafeMutablePointer<Float>, _ images: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    batch: Int, channels: Int, height: Int, width: Int, patch: Int, outChannels: Int
) {
    let gridH = height / patch, gridW = width / patch
    for b in 0..<batch {
        for py in 0..<gridH {
            for px in 0..<gridW {
                for o in 0..<outChannels {
                    var sum = Double(bias?[o] ?? 0)
                    for c in 0..<channels {
                        for ky in 0..<patch {
                            for kx in 0..<patch {
                                let pixel = images[((b * channels + c) * height + py * patch + ky) * width + px * patch + kx]
                                let w = weight[((o * channels + c) * patch + ky) * patch + kx]
                                sum += Double(pixel) * Double(w)
                            }
                        }
                    }
                    y[((b * gridH + py) * gridW + px) * outChannels + o] = Float(sum)
                }
            }
        }
    }
}
