/// The element types a safetensors file may declare.
///
/// Every dtype can be stored in a ``Tensor``; arithmetic happens in `Float`, and the
/// floating-point storage types (``f32``, ``f16``, ``bf16``) convert to it with
/// ``Tensor/floats()`` or ``Tensor/converted(to:)``. Raw values follow the
/// safetensors spelling (`"F32"`, `"BF16"`, …).
public enum DType: String, Sendable, CaseIterable, Codable {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case f8e5m2 = "F8_E5M2"
    case f8e4m3 = "F8_E4M3"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Size of one element in bytes.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: 1
        case .i16, .u16, .f16, .bf16: 2
        case .i32, .u32, .f32: 4
        case .f64, .i64, .u64: 8
        }
    }

    /// Whether the type is one of the float storage types the kernels consume:
    /// F32, F16 or BF16.
    public var isFloatStorage: Bool { self == .f32 || self == .f16 || self == .bf16 }
}
