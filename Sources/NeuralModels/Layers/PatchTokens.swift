import NeuralCore

/// The input of a ViT encoder, as CLIP's and BLIP's vision embeddings build it:
/// each image's class token, then its patches embedded by the patch
/// convolution (im2col + GEMM), plus the position embeddings.
///
/// - Parameters:
///   - pixels: `[B, channels, S, S]` (any float storage).
///   - classEmbedding: `[C]` (any shape of C values).
///   - patchWeight: the convolution flattened to `[C, channels·P²]`.
///   - patchBias: `[C]`, or nil for a convolution without bias.
///   - positions: `[1 + (S/P)², C]` (any shape of that many values).
/// - Returns: `[B, 1 + (S/P)², C]`.
/// - Throws: ``ModelInputError/imageShape(found:expected:)`` unless `pixels` is
///   `[B, channels, S, S]` floats.
func patchTokens(_ pixels: Tensor, channels c: Int, imageSize s: Int, patchSize p: Int,
                 classEmbedding: Tensor, patchWeight: Tensor, patchBias: Tensor?, positions: Tensor) throws -> Tensor {
    guard pixels.shape.count == 4, Array(pixels.shape.dropFirst()) == [c, s, s], pixels.dtype.isFloatStorage else {
        throw ModelInputError.imageShape(found: pixels.shape, expected: [pixels.shape.first ?? 1, c, s, s])
    }
    let batch = pixels.shape[0], width = patchWeight.shape[0], patches = (s / p) * (s / p)
    let input = pixels.asF32()
    return Tensor(shape: [batch, patches + 1, width]) { out in
        withExtendedLifetime((input, classEmbedding, patchWeight, patchBias, positions)) {
            Workspace.withScratch(patches * c * p * p) { scratch in
                for b in 0..<batch {
                    let image = out + b * (patches + 1) * width
                    image.update(from: classEmbedding.unsafeFloatPointer, count: width)
                    patchEmbedding(image + width, input.unsafeFloatPointer + b * c * s * s, weight: patchWeight.unsafeFloatPointer,
                                   bias: patchBias?.unsafeFloatPointer, batch: 1, channels: c, height: s, width: s, patch: p,
                                   outChannels: width, scratch: scratch)
                    addResidual(image, positions.unsafeFloatPointer, count: (patches + 1) * width)
                }
            }
        }
    }
}
