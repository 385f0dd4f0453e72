/* Small helpers shared by the modules that read and write HDF5 files (not a public header). */
#ifndef CRNN_H5UTIL_H
#define CRNN_H5UTIL_H

#include <hdf5.h>

/* Closes an HDF5 handle with fn when it is open, and marks it closed. */
#define CLOSE_ID(id, fn)            \
    do {                            \
        if ((id) >= 0) {            \
            fn(id);                 \
            (id) = H5I_INVALID_HID; \
        }                           \
    } while (0)

#endif
