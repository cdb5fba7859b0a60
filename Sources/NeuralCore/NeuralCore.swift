// NeuralCore: tensors, safetensors, BLAS and SIMD kernels.
