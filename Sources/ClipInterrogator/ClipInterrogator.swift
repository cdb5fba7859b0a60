// ClipInterrogator: the public Interrogator API.
import NeuralModels
