// The part of Pillow's PngImagePlugin that runs at `Image.open`: it walks the
// chunks before the first IDAT, checks each CRC and a few lengths, and takes
// the mode and the palette from them. libpng is told to ignore CRCs (Pillow
// never checks the IDAT ones), so these checks decide which files are broken.
//
// Port of PngImagePlugin.PngImageFile._open / ChunkStream.read / ChunkStream.crc
// (Pillow 13.0.0), without the APNG frame handling.

/// What the chunks before the image data say.
struct PNGHeader {
    var width = 0
    var height = 0
    var bitDepth = 0
    var colorType = 0
    var interlaced = false
    /// PLTE bytes (R, G, B per entry) for palette images; empty otherwise.
    var palette: [UInt8] = []
}

enum PNGHeaderScanner {
    /// (bit depth, colour type) pairs Pillow opens (`PngImagePlugin._MODES`).
    static let supportedModes: Set<[Int]> = [
        [1, 0], [2, 0], [4, 0], [8, 0], [16, 0],
        [8, 2], [16, 2],
        [1, 3], [2, 3], [4, 3], [8, 3],
        [8, 4], [16, 4],
        [8, 6], [16, 6],
    ]

    static func scan(_ bytes: UnsafeBufferPointer<UInt8>) throws -> PNGHeader {
        var header = PNGHeader()
        var sawHeader = false
        var position = 8  // after the signature
        func broken(_ message: String) -> ImageDecodingError {
            .corrupt(format: .png, message: message)
        }
        func u32(_ at: Int) -> Int {
            Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
        }

        while true {
            guard position + 8 <= bytes.count else {
                throw ImageDecodingError.truncated(format: .png, message: "cannot identify image file (truncated chunk header)")
            }
            let length = u32(position)
            let typeBytes = Array(bytes[(position + 4)..<(position + 8)])
            let type = String(decoding: typeBytes, as: UTF8.self)
            // ChunkStream.read: the type must match rb"\w\w\w\w".
            guard typeBytes.allSatisfy({ isWordByte($0) }) else {
                throw broken("broken PNG file (chunk \(typeBytes))")
            }
            let dataStart = position + 8
            if type == "IDAT" || type == "fdAT" {
                break  // chunk_IDAT / chunk_fdAT end the header
            }
            if type == "IEND" {
                throw broken("cannot load this image (no image data before IEND)")
            }
            guard length <= bytes.count - dataStart else {
                throw ImageDecodingError.truncated(format: .png, message: "Truncated File Read (\(type) chunk)")
            }
            let data = UnsafeBufferPointer(rebasing: bytes[dataStart..<(dataStart + length)])

            switch type {
            case "IHDR":
                guard length >= 13 else { throw broken("Truncated IHDR chunk") }
                header.width = u32(dataStart)
                header.height = u32(dataStart + 4)
                header.bitDepth = Int(data[8])
                header.colorType = Int(data[9])
                header.interlaced = data[12] != 0
                if data[11] != 0 { throw broken("unknown filter category") }
                sawHeader = true
            case "PLTE":
                if sawHeader && header.colorType == 3 && supportedModes.contains([header.bitDepth, 3]) {
                    header.palette = Array(data)
                }
            case "tRNS":
                if sawHeader && header.colorType != 3 && supportedModes.contains([header.bitDepth, header.colorType]) {
                    if header.colorType == 2 && length < 6 { throw broken("Truncated tRNS chunk") }
                    if header.colorType == 0 && length < 2 { throw broken("Truncated tRNS chunk") }
                }
            case "gAMA":
                if length < 4 { throw broken("Truncated gAMA chunk") }
            case "cHRM":
                if length < 32 { throw broken("Truncated cHRM chunk") }
            case "sRGB":
                if length < 1 { throw broken("Truncated sRGB chunk") }
            case "pHYs":
                if length < 9 { throw broken("Truncated pHYs chunk") }
            case "iCCP":
                // comp_method = s[s.find(b"\0") + 1]
                let nul = data.firstIndex(of: 0) ?? -1
                guard nul + 1 < length else { throw broken("cannot identify image file (iCCP)") }
                if data[nul + 1] != 0 { throw broken("Unknown compression method \(data[nul + 1]) in iCCP chunk") }
            default:
                break
            }

            // ChunkStream.crc
            let crcAt = dataStart + length
            guard crcAt + 4 <= bytes.count else {
                throw broken("broken PNG file (incomplete checksum in \(type))")
            }
            let stored = UInt32(truncatingIfNeeded: u32(crcAt))
            let computed = ImagingCRC32.checksum(UnsafeBufferPointer(rebasing: bytes[(position + 4)..<crcAt]))
            if stored != computed {
                throw broken("broken PNG file (bad header checksum in \(type))")
            }
            position = crcAt + 4
        }

        guard sawHeader else { throw broken("image data before IHDR") }
        guard supportedModes.contains([header.bitDepth, header.colorType]) else {
            throw ImageDecodingError.unsupportedFormat(
                "PNG with bit depth \(header.bitDepth) and colour type \(header.colorType)")
        }
        return header
    }

    /// `\w` for bytes: ASCII letters, digits and underscore.
    private static func isWordByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
    }
}

/// CRC-32 (ISO-HDLC, the zlib/PNG one), for PNG chunk checks and fixture hashes.
enum ImagingCRC32 {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 {
            c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1
        }
        return c
    }

    static func checksum(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            for b in bytes {
                crc = t[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8)
            }
        }
        return crc ^ 0xFFFF_FFFF
    }
}
