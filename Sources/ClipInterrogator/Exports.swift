// What the common path needs from the modules below, re-exported so that
// `import ClipInterrogator` alone loads models, decodes images and interrogates
// them: the Hugging Face Hub client (model names, resolution, downloads) and the
// image types. Everything else stays behind its own import.
@_exported import HuggingFaceHub
@_exported import enum NeuralModels.ImageDecoder
@_exported import enum NeuralModels.ImageDecodingError
@_exported import struct NeuralModels.RGBImage
@_exported import struct NeuralModels.GenerationOptions
