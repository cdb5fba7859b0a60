// NeuralModels: layers, CLIP, BLIP, tokenizers and imaging.
import NeuralCore
