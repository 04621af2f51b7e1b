// HDF5's C API for Swift. HDF5 spells its type and property constants as macros over
// library globals (H5T_NATIVE_FLOAT expands to H5OPEN H5T_NATIVE_FLOAT_g), which Swift cannot
// import and Swift 6 would reject as unsafe globals anyway; each is wrapped in a function here.
#ifndef SIMJOB_CHDF5_SHIM_H
#define SIMJOB_CHDF5_SHIM_H
#include <hdf5.h>
// zlib, for decompressing deflate chunks on several threads (HDF5 itself is single-threaded).
#include <zlib.h>

static inline hid_t sj_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t sj_H5S_ALL(void) { return H5S_ALL; }
static inline hid_t sj_H5E_DEFAULT(void) { return H5E_DEFAULT; }
static inline unsigned sj_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned sj_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline unsigned sj_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline hid_t sj_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t sj_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t sj_H5P_GROUP_CREATE(void) { return H5P_GROUP_CREATE; }
static inline hid_t sj_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }

// Memory (native) types.
static inline hid_t sj_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t sj_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t sj_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t sj_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t sj_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t sj_H5T_C_S1(void) { return H5T_C_S1; }

// File types, little-endian as numpy and h5py write them.
static inline hid_t sj_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t sj_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t sj_H5T_STD_I32LE(void) { return H5T_STD_I32LE; }
static inline hid_t sj_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t sj_H5T_STD_U8LE(void) { return H5T_STD_U8LE; }

static inline size_t sj_H5T_VARIABLE(void) { return H5T_VARIABLE; }
static inline hid_t sj_H5P_DATASET_XFER_DEFAULT(void) { return H5P_DEFAULT; }
static inline int sj_H5Z_FILTER_DEFLATE(void) { return H5Z_FILTER_DEFLATE; }
static inline int sj_H5Z_FILTER_SHUFFLE(void) { return H5Z_FILTER_SHUFFLE; }

// Silence HDF5's own error-stack printing so simjob reports problems in its own words, and
// keep HDF5 from running its clean-up at process exit: after a failed write (a full disk) that
// clean-up touched the half-closed file and crashed. simjob closes every file it writes itself.
static inline void sj_silence_errors(void) { H5dont_atexit(); H5open(); H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static inline unsigned sj_H5F_CLOSE_STRONG(void) { return H5F_CLOSE_STRONG; }

// The error stack of the last failed call, innermost (the cause) first: each entry's
// description, separated by " | ", into `buffer`.
struct sj_error_text { char *buffer; size_t size; size_t used; };
static herr_t sj_error_walk(unsigned n, const H5E_error2_t *entry, void *data) {
    (void)n;
    struct sj_error_text *text = (struct sj_error_text *)data;
    const char *desc = entry->desc ? entry->desc : "";
    int written = snprintf(text->buffer + text->used, text->size - text->used, "%s%s", text->used ? " | " : "", desc);
    if (written > 0) {
        text->used += (size_t)written;
        if (text->used >= text->size) text->used = text->size - 1;
    }
    return 0;
}
static inline void sj_error_stack(char *buffer, size_t size) {
    struct sj_error_text text = { buffer, size, 0 };
    buffer[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, sj_error_walk, &text);
}
static inline void sj_clear_errors(void) { H5Eclear2(H5E_DEFAULT); }

#endif
