// setjmp boundary around libpng (progressive reader) and libjpeg.
// See include/CImageCodecs.h for the contract.

#include "CImageCodecs.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <jpeglib.h>
#include <jerror.h>

static void cic_set_message(CICRaster *out, const char *message) {
    if (message == NULL) {
        message = "unknown error";
    }
    snprintf(out->message, sizeof(out->message), "%s", message);
}

void cic_raster_free(CICRaster *raster) {
    if (raster != NULL) {
        free(raster->samples);
        raster->samples = NULL;
        raster->samples_size = 0;
    }
}

/* ------------------------------------------------------------------------ */
/* PNG                                                                      */
/* ------------------------------------------------------------------------ */

typedef struct cic_png_context {
    jmp_buf jump;
    CICRaster *out;
    CICStatus status;          // status carried through longjmp
    size_t row_bytes;          // bytes in one full-image row
    size_t pixel_bytes;        // bytes in one pixel
    unsigned long rows_expected;
    unsigned long rows_received;
    int header_seen;
    char warning[160];         // first libpng warning once image data started
} cic_png_context;

static void cic_png_error(png_structp png, png_const_charp message) {
    cic_png_context *context = (cic_png_context *)png_get_error_ptr(png);
    cic_set_message(context->out, message);
    context->status = CIC_CORRUPT;
    longjmp(context->jump, 1);
}

static void cic_png_warning(png_structp png, png_const_charp message) {
    // Warnings before the image data (ancillary chunks) do not matter. Once
    // IDAT started, libpng reports a broken zlib stream as a (benign) warning
    // and stops producing rows: keep the text to tell corrupt from truncated.
    cic_png_context *context = (cic_png_context *)png_get_error_ptr(png);
    if (context->header_seen && context->warning[0] == 0 && message != NULL) {
        snprintf(context->warning, sizeof(context->warning), "%s", message);
    }
}

static void cic_png_fail(png_structp png, CICStatus status, const char *message) {
    cic_png_context *context = (cic_png_context *)png_get_progressive_ptr(png);
    cic_set_message(context->out, message);
    context->status = status;
    longjmp(context->jump, 1);
}

static void cic_png_info(png_structp png, png_infop info) {
    cic_png_context *context = (cic_png_context *)png_get_progressive_ptr(png);
    CICRaster *out = context->out;
    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;

    if (context->header_seen) {
        // libpng announces the image again when IDAT chunks resume after another
        // chunk. The image is the first run of IDAT chunks, as Pillow reads it:
        // complete if its rows all arrived (see cic_decode_png), else corrupt.
        cic_png_fail(png, CIC_CORRUPT, "image data resumes after another chunk");
    }
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    if (bit_depth < 8) {
        png_set_packing(png);  // one byte per sample, values unscaled
    }
    png_read_update_info(png, info);

    size_t channels = png_get_channels(png, info);
    size_t sample_bytes = bit_depth == 16 ? 2 : 1;
    size_t pixel_bytes = channels * sample_bytes;
    if (width == 0 || height == 0 || channels == 0) {
        cic_png_fail(png, CIC_CORRUPT, "invalid image dimensions");
    }
    if ((size_t)width > SIZE_MAX / pixel_bytes ||
        (size_t)height > SIZE_MAX / ((size_t)width * pixel_bytes)) {
        cic_png_fail(png, CIC_NO_MEMORY, "image too large");
    }
    size_t row_bytes = (size_t)width * pixel_bytes;
    size_t total = row_bytes * (size_t)height;
    out->samples = (uint8_t *)calloc(total, 1);
    if (out->samples == NULL) {
        cic_png_fail(png, CIC_NO_MEMORY, "out of memory");
    }
    out->samples_size = total;
    out->width = width;
    out->height = height;
    out->channels = (uint32_t)channels;
    out->bit_depth = (uint32_t)bit_depth;
    out->bytes_per_sample = (uint32_t)sample_bytes;
    out->color_type = color_type;
    out->interlaced = interlace == PNG_INTERLACE_ADAM7;

    context->row_bytes = row_bytes;
    context->pixel_bytes = pixel_bytes;
    context->rows_received = 0;
    if (out->interlaced) {
        // libpng skips passes whose sub-image is empty; count rows of the others.
        unsigned long rows = 0;
        for (int pass = 0; pass < 7; pass++) {
            unsigned long pass_rows = PNG_PASS_ROWS(height, pass);
            unsigned long pass_cols = PNG_PASS_COLS(width, pass);
            if (pass_rows > 0 && pass_cols > 0) {
                rows += pass_rows;
            }
        }
        context->rows_expected = rows;
    } else {
        context->rows_expected = height;
    }
    context->header_seen = 1;
}

static void cic_png_row(png_structp png, png_bytep row, png_uint_32 row_number, int pass) {
    cic_png_context *context = (cic_png_context *)png_get_progressive_ptr(png);
    CICRaster *out = context->out;
    if (row == NULL || context->rows_received >= context->rows_expected) {
        return;
    }
    if (out->interlaced) {
        // Without libpng's interlace handling, rows arrive per Adam7 sub-image.
        png_uint_32 y = PNG_ROW_FROM_PASS_ROW(row_number, pass);
        if (y >= out->height) {
            return;
        }
        png_uint_32 columns = PNG_PASS_COLS(out->width, pass);
        uint8_t *destination = out->samples + (size_t)y * context->row_bytes;
        for (png_uint_32 i = 0; i < columns; i++) {
            png_uint_32 x = PNG_COL_FROM_PASS_COL(i, pass);
            if (x >= out->width) {
                break;
            }
            memcpy(destination + (size_t)x * context->pixel_bytes,
                   row + (size_t)i * context->pixel_bytes, context->pixel_bytes);
        }
    } else {
        if (row_number >= out->height) {
            return;
        }
        memcpy(out->samples + (size_t)row_number * context->row_bytes, row, context->row_bytes);
    }
    context->rows_received++;
}

static void cic_png_end(png_structp png, png_infop info) {
    (void)png;
    (void)info;
}

CICStatus cic_decode_png(const uint8_t *data, size_t size, CICRaster *out) {
    memset(out, 0, sizeof(*out));
    // On the heap so that its fields are well defined after longjmp.
    cic_png_context *context = (cic_png_context *)calloc(1, sizeof(cic_png_context));
    if (context == NULL) {
        cic_set_message(out, "out of memory");
        return CIC_NO_MEMORY;
    }
    context->out = out;

    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, context,
                                             cic_png_error, cic_png_warning);
    if (png == NULL) {
        free(context);
        cic_set_message(out, "cannot create libpng reader");
        return CIC_NO_MEMORY;
    }
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        free(context);
        cic_set_message(out, "cannot create libpng info");
        return CIC_NO_MEMORY;
    }

    CICStatus status = CIC_OK;
    if (setjmp(context->jump)) {
        // Pillow stops reading once every row is decoded; whatever goes
        // wrong after that point does not concern the image.
        if (context->header_seen && context->rows_received >= context->rows_expected) {
            out->message[0] = 0;
            status = CIC_OK;
        } else {
            status = context->status == CIC_OK ? CIC_CORRUPT : context->status;
        }
    } else {
        // Pillow does not verify IDAT checksums nor the zlib Adler-32; the
        // caller checks the chunks before IDAT. Benign errors are warnings.
        png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
#ifdef PNG_IGNORE_ADLER32
        png_set_option(png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
#ifdef PNG_BENIGN_ERRORS_SUPPORTED
        png_set_benign_errors(png, 1);
#endif
#ifdef PNG_SET_USER_LIMITS_SUPPORTED
        png_set_user_limits(png, 0x7fffffffL, 0x7fffffffL);
#endif
        png_set_progressive_read_fn(png, context, cic_png_info, cic_png_row, cic_png_end);
        png_process_data(png, info, (png_bytep)data, size);
        if (!(context->header_seen && context->rows_received >= context->rows_expected)) {
            if (context->warning[0] != 0) {
                cic_set_message(out, context->warning);
                status = CIC_CORRUPT;
            } else {
                cic_set_message(out, context->header_seen ? "image file is truncated"
                                                          : "truncated PNG header");
                status = CIC_TRUNCATED;
            }
        }
    }
    png_destroy_read_struct(&png, &info, NULL);
    free(context);
    if (status != CIC_OK) {
        cic_raster_free(out);
    }
    return status;
}

/* ------------------------------------------------------------------------ */
/* JPEG                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct cic_jpeg_error {
    struct jpeg_error_mgr manager;  // must be first
    jmp_buf jump;
    CICRaster *out;
    CICStatus status;
    int finishing;                   // set once every scanline has been read
} cic_jpeg_error;

/// libjpeg's progress hook, used as djpeg's `-maxscans` and TurboJPEG's
/// TJPARAM_SCANLIMIT use it: a progressive file of many tiny scans makes the
/// decoder revisit the whole coefficient buffer once per scan, so a few KB can
/// keep it busy for minutes. Past `CIC_JPEG_MAX_SCANS` scans the file is refused.
static void cic_jpeg_progress(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) {
        return;
    }
    j_decompress_ptr dinfo = (j_decompress_ptr)cinfo;
    if (dinfo->input_scan_number > CIC_JPEG_MAX_SCANS) {
        cic_jpeg_error *error = (cic_jpeg_error *)cinfo->err;
        char buffer[96];
        snprintf(buffer, sizeof(buffer), "progressive JPEG has more than %d scans", CIC_JPEG_MAX_SCANS);
        cic_set_message(error->out, buffer);
        error->status = CIC_CORRUPT;
        longjmp(error->jump, 1);
    }
}

static void cic_jpeg_error_exit(j_common_ptr cinfo) {
    cic_jpeg_error *error = (cic_jpeg_error *)cinfo->err;
    char buffer[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buffer);
    cic_set_message(error->out, buffer);
    error->status = CIC_CORRUPT;
    longjmp(error->jump, 1);
}

static void cic_jpeg_emit_message(j_common_ptr cinfo, int level) {
    cic_jpeg_error *error = (cic_jpeg_error *)cinfo->err;
    if (level >= 0) {
        return;  // trace messages
    }
    // The memory source reports running out of data as a warning and pads
    // with a fake EOI. Pillow's suspending source raises "image file is
    // truncated" in that case, unless every scanline is already out.
    if (cinfo->err->msg_code == JWRN_JPEG_EOF && !error->finishing) {
        char buffer[JMSG_LENGTH_MAX];
        (*cinfo->err->format_message)(cinfo, buffer);
        cic_set_message(error->out, buffer);
        error->status = CIC_TRUNCATED;
        longjmp(error->jump, 1);
    }
    cinfo->err->num_warnings++;
}

static void cic_jpeg_output_message(j_common_ptr cinfo) {
    (void)cinfo;
}

static CICStatus cic_jpeg_run(j_decompress_ptr cinfo, cic_jpeg_error *error,
                              const uint8_t *data, size_t size, uint64_t max_pixels,
                              CICRaster *out) {
    jpeg_mem_src(cinfo, data, (unsigned long)size);
    jpeg_read_header(cinfo, TRUE);
    if (max_pixels != 0 && (uint64_t)cinfo->image_width * (uint64_t)cinfo->image_height > max_pixels) {
        char buffer[96];
        snprintf(buffer, sizeof(buffer), "%u x %u pixels exceeds the limit",
                 (unsigned)cinfo->image_width, (unsigned)cinfo->image_height);
        cic_set_message(out, buffer);
        return CIC_NO_MEMORY;
    }

    // Pillow picks the output space from the component count only
    // (JpegImagePlugin.SOF + JpegDecode.c); everything else stays default:
    // JDCT_ISLOW, fancy upsampling, block smoothing.
    switch (cinfo->num_components) {
    case 1:
        cinfo->out_color_space = JCS_GRAYSCALE;
        break;
    case 3:
        cinfo->out_color_space = JCS_RGB;
        break;
    case 4:
        cinfo->out_color_space = JCS_CMYK;
        break;
    default: {
        char buffer[64];
        snprintf(buffer, sizeof(buffer), "cannot handle %d-layer images", cinfo->num_components);
        cic_set_message(out, buffer);
        return CIC_UNSUPPORTED;
    }
    }
    if (cinfo->data_precision != 8) {
        char buffer[64];
        snprintf(buffer, sizeof(buffer), "cannot handle %d-bit layers", cinfo->data_precision);
        cic_set_message(out, buffer);
        return CIC_UNSUPPORTED;
    }

    jpeg_start_decompress(cinfo);
    size_t channels = (size_t)cinfo->output_components;
    size_t width = cinfo->output_width;
    size_t height = cinfo->output_height;
    if (width == 0 || height == 0 || channels == 0 || width > SIZE_MAX / channels ||
        height > SIZE_MAX / (width * channels)) {
        cic_set_message(out, "invalid image dimensions");
        return CIC_CORRUPT;
    }
    size_t row_bytes = width * channels;
    out->samples = (uint8_t *)malloc(row_bytes * height);
    if (out->samples == NULL) {
        cic_set_message(out, "out of memory");
        return CIC_NO_MEMORY;
    }
    out->samples_size = row_bytes * height;
    out->width = (uint32_t)width;
    out->height = (uint32_t)height;
    out->channels = (uint32_t)channels;
    out->bit_depth = 8;
    out->bytes_per_sample = 1;
    out->color_type = cinfo->num_components;

    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = out->samples + (size_t)cinfo->output_scanline * row_bytes;
        jpeg_read_scanlines(cinfo, &row, 1);
    }
    error->finishing = 1;
    jpeg_finish_decompress(cinfo);
    return CIC_OK;
}

typedef struct cic_jpeg_state {
    struct jpeg_decompress_struct cinfo;
    cic_jpeg_error error;
    struct jpeg_progress_mgr progress;
} cic_jpeg_state;

CICStatus cic_decode_jpeg(const uint8_t *data, size_t size, uint64_t max_pixels, CICRaster *out) {
    memset(out, 0, sizeof(*out));
    if (size == 0) {
        cic_set_message(out, "empty input");
        return CIC_TRUNCATED;
    }
    // On the heap so that its fields are well defined after longjmp.
    cic_jpeg_state *state = (cic_jpeg_state *)calloc(1, sizeof(cic_jpeg_state));
    if (state == NULL) {
        cic_set_message(out, "out of memory");
        return CIC_NO_MEMORY;
    }
    struct jpeg_decompress_struct *cinfo = &state->cinfo;
    state->error.out = out;
    cinfo->err = jpeg_std_error(&state->error.manager);
    state->error.manager.error_exit = cic_jpeg_error_exit;
    state->error.manager.emit_message = cic_jpeg_emit_message;
    state->error.manager.output_message = cic_jpeg_output_message;

    CICStatus status = CIC_OK;
    if (setjmp(state->error.jump)) {
        status = state->error.status == CIC_OK ? CIC_CORRUPT : state->error.status;
    } else {
        jpeg_create_decompress(cinfo);
        state->progress.progress_monitor = cic_jpeg_progress;
        cinfo->progress = &state->progress;
        status = cic_jpeg_run(cinfo, &state->error, data, size, max_pixels, out);
    }
    jpeg_destroy_decompress(cinfo);
    free(state);
    if (status != CIC_OK) {
        cic_raster_free(out);
    }
    return status;
}
