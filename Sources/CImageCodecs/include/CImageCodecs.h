// CImageCodecs: a thin setjmp/longjmp boundary around libpng and libjpeg.
//
// libpng and libjpeg report fatal errors by longjmp, which Swift cannot
// survive. These functions catch every such error and return a status code and
// the library's message instead. They only decode to raw samples; every
// conversion to RGB (the Pillow semantics) is done in Swift.
#ifndef CIMAGECODECS_H
#define CIMAGECODECS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Status codes returned by the decoders.
typedef enum CICStatus {
    CIC_OK = 0,
    /// The library rejected the data; `message` holds its text.
    CIC_CORRUPT = 1,
    /// The data ended before every row of the image was decoded.
    CIC_TRUNCATED = 2,
    /// A valid file of a kind this module does not handle (e.g. 2-channel JPEG).
    CIC_UNSUPPORTED = 3,
    /// Allocation failed or the image is too large to address.
    CIC_NO_MEMORY = 4
} CICStatus;

/// Raw decoded samples, row-major, `width * channels * bytes_per_sample` bytes a row.
///
/// PNG: samples exactly as stored (no gamma, no expansion). Bit depths below 8
/// are unpacked to one byte per sample with their values unchanged (0...2^n-1);
/// 16-bit samples are two bytes, big-endian. Palette images give indices.
/// `color_type` is the PNG colour type (0, 2, 3, 4, 6).
///
/// JPEG: libjpeg's output with its defaults (ISLOW IDCT, fancy upsampling):
/// grayscale (1 channel), RGB (3) or CMYK as libjpeg emits it (4, Adobe
/// inverted values, YCCK already converted). `color_type` is the number of
/// components in the file.
typedef struct CICRaster {
    uint32_t width;
    uint32_t height;
    uint32_t channels;
    uint32_t bit_depth;       // PNG bit depth as in the file (1, 2, 4, 8, 16); 8 for JPEG
    uint32_t bytes_per_sample; // 1 or 2
    int32_t color_type;
    uint32_t interlaced;
    uint8_t *samples;          // malloc'd; release with cic_raster_free
    size_t samples_size;
    char message[200];
} CICRaster;

/// Decode a whole PNG held in memory. CRC errors are ignored (the caller
/// checks the chunks before the image data itself, as Pillow does); decoding
/// succeeds once every row has been produced, whatever follows.
CICStatus cic_decode_png(const uint8_t *data, size_t size, CICRaster *out);

/// Most scans a progressive JPEG may have (djpeg's `-maxscans`, TurboJPEG's
/// TJPARAM_SCANLIMIT; 500 is the limit libjpeg-turbo's own fuzzers use).
/// Camera and encoder output has at most a dozen or so.
#define CIC_JPEG_MAX_SCANS 500

/// Decode a whole JPEG held in memory with libjpeg's default settings.
/// Running out of data before the last scanline is `CIC_TRUNCATED`; other
/// libjpeg warnings are ignored (as Pillow ignores them). An image of more
/// than `max_pixels` pixels (0: no limit) is refused with `CIC_NO_MEMORY`
/// before anything is allocated; one of more than `CIC_JPEG_MAX_SCANS` scans
/// with `CIC_CORRUPT`.
CICStatus cic_decode_jpeg(const uint8_t *data, size_t size, uint64_t max_pixels, CICRaster *out);

/// Free the samples of a raster (safe on a zeroed raster).
void cic_raster_free(CICRaster *raster);

#ifdef __cplusplus
}
#endif

#endif
