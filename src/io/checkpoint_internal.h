/* What the checkpoint's writer (checkpoint_write.c) and reader (checkpoint_read.c) share: the
 * string type of its attributes and the longest object path (not a public header). */
#ifndef CRNN_CHECKPOINT_INTERNAL_H
#define CRNN_CHECKPOINT_INTERNAL_H

#include <hdf5.h>

#define PATH_MAX_LEN 96 /* HDF5 object paths inside a checkpoint ("/state/hidden/63/h") */

/* A variable-length UTF-8 string type (every string attribute and /vocab/idx_to_token), or
 * H5I_INVALID_HID. The caller closes it. */
static inline hid_t checkpoint_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return t;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

#endif
