import XCTest
@testable import NeuralModels
