/* The preprocessed data: one split of torch-rnn's HDF5 file seen as N streams (docs/FORMATS.md
 * section 2), of which this rank reads only its own contiguous slice, and the B x S batches
 * cut from it. Tokens stay at the file's width (uint8 or uint32) and 1-based in memory. */
#include "crnn/dataset.h"

#include <errno.h>
#include <hdf5.h>
#include <mpi.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5util.h"


/* Says why an HDF5 file could not be opened: missing, unreadable, or not/no longer HDF5. */
static void describe_open_failure(const char *path, char *why, size_t len) {
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(why, len, "%s", strerror(errno));
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(why, len, "it is a folder");
        return;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, len, "%s", strerror(errno));
        return;
    }
    fclose(f);
    snprintf(why, len, "not a readable HDF5 file (truncated or corrupt?)");
}

/* Opens a data file: alone (mpi_comm NULL), or together with every rank of *mpi_comm through
 * MPI-IO, with collective metadata reads, so that a thousand ranks do not each walk the file. */
static hid_t data_file_open(const char *path, const void *mpi_comm, CrnnError *err) {
    hid_t fapl = H5P_DEFAULT;
    if (mpi_comm) {
        fapl = H5Pcreate(H5P_FILE_ACCESS);
        if (fapl < 0 || H5Pset_fapl_mpio(fapl, *(const MPI_Comm *)mpi_comm, MPI_INFO_NULL) < 0 ||
            H5Pset_all_coll_metadata_ops(fapl, 1) < 0) {
            if (fapl >= 0) H5Pclose(fapl);
            crnn_fail_io(err, "cannot set up parallel HDF5 (MPI-IO) to read %s", path);
            return H5I_INVALID_HID;
        }
    }
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (fapl != H5P_DEFAULT) H5Pclose(fapl);
    if (file < 0) {
        char why[256];
        describe_open_failure(path, why, sizeof why);
        /* a file that is there and readable but does not open is not an HDF5 file */
        crnn_fail_kind(err, access(path, R_OK) == 0 ? CRNN_ERR_CORRUPT : CRNN_ERR_IO,
                       "cannot open the data file %s: %s; run crnn-preprocess again", path, why);
    }
    return file;
}

/* A short description of an HDF5 datatype for error messages. */
static void describe_type(hid_t type, char *out, size_t len) {
    size_t bits = H5Tget_size(type) * 8;
    switch (H5Tget_class(type)) {
    case H5T_INTEGER:
        snprintf(out, len, "%s%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int", bits);
        break;
    case H5T_FLOAT: snprintf(out, len, "float%zu", bits); break;
    case H5T_STRING: snprintf(out, len, "string"); break;
    default: snprintf(out, len, "a non-numeric type"); break;
    }
}

/* Opens /<split> of an open data file and checks it is 1-D uint8 or uint32.
 * Returns the dataset id, or -1 with a message. */
static hid_t split_open(hid_t file, const char *path, const char *split, int64_t *num,
                        int *elem_size, CrnnError *err) {
    htri_t exists = H5Lexists(file, split, H5P_DEFAULT);
    if (exists <= 0) {
        crnn_fail_corrupt(err, "the data file %s has no /%s dataset; run crnn-preprocess again (it writes /train, /val and /test)",
                  path, split);
        return H5I_INVALID_HID;
    }
    hid_t dset = H5Dopen2(file, split, H5P_DEFAULT);
    if (dset < 0) {
        crnn_fail_corrupt(err, "cannot open /%s in the data file %s (not a dataset, or the file is corrupt); run crnn-preprocess again",
                  split, path);
        return H5I_INVALID_HID;
    }
    hid_t type = H5Dget_type(dset), space = H5Dget_space(dset);
    int ok = 0;
    if (type >= 0 && space >= 0) {
        int ndims = H5Sget_simple_extent_ndims(space);
        int good_type = H5Tget_class(type) == H5T_INTEGER && H5Tget_sign(type) == H5T_SGN_NONE &&
                        (H5Tget_size(type) == 1 || H5Tget_size(type) == 4);
        char tname[32];
        describe_type(type, tname, sizeof tname);
        if (ndims != 1 || !good_type) {
            crnn_fail_corrupt(err, "/%s in the data file %s must be a 1-D uint8 or uint32 dataset (torch-rnn's format), got a %d-D %s one; run crnn-preprocess again",
                      split, path, ndims < 0 ? 0 : ndims, tname);
        } else {
            hsize_t dims[1];
            if (H5Sget_simple_extent_dims(space, dims, NULL) == 1) {
                *num = (int64_t)dims[0];
                *elem_size = (int)H5Tget_size(type);
                ok = 1;
            } else {
                crnn_fail_corrupt(err, "cannot read the shape of /%s in the data file %s", split, path);
            }
        }
    } else {
        crnn_fail_corrupt(err, "cannot read the type of /%s in the data file %s (corrupt?); run crnn-preprocess again",
                  split, path);
    }
    CLOSE_ID(type, H5Tclose);
    CLOSE_ID(space, H5Sclose);
    if (!ok) CLOSE_ID(dset, H5Dclose);
    return dset;
}

/* Reads tokens [start, start+count) of a split into buf at the file's width: one contiguous
 * hyperslab. With MPI-IO this becomes a collective read (each rank its own slice). */
static int split_read_slice(hid_t dset, const char *path, const char *split, int64_t start,
                            int64_t count, int elem_size, int collective, void *buf, CrnnError *err) {
    hid_t dxpl = H5P_DEFAULT;
    if (collective) { /* every rank reads its slice in one collective MPI-IO operation */
        dxpl = H5Pcreate(H5P_DATASET_XFER);
        if (dxpl >= 0) H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    }
    hid_t fspace = H5Dget_space(dset);
    hsize_t hstart[1] = {(hsize_t)start}, hcount[1] = {(hsize_t)count}, one[1] = {1};
    hid_t mspace = H5Screate_simple(1, count ? hcount : one, NULL);
    int rc = -1;
    /* a rank with nothing to read still takes part, selecting nothing */
    int selected = count ? H5Sselect_hyperslab(fspace, H5S_SELECT_SET, hstart, NULL, hcount, NULL)
                         : (H5Sselect_none(fspace) < 0 ? -1 : H5Sselect_none(mspace));
    if (fspace >= 0 && mspace >= 0 && selected >= 0 &&
        H5Dread(dset, elem_size == 1 ? H5T_NATIVE_UINT8 : H5T_NATIVE_UINT32, mspace, fspace,
                dxpl, buf) >= 0)
        rc = 0;
    else
        crnn_fail_corrupt(err, "cannot read tokens %" PRId64 "..%" PRId64 " of /%s in the data file %s (truncated or corrupt?); run crnn-preprocess again",
                  start, start + count - 1, split, path);
    CLOSE_ID(mspace, H5Sclose);
    CLOSE_ID(fspace, H5Sclose);
    if (dxpl != H5P_DEFAULT) H5Pclose(dxpl);
    return rc;
}

int dataset_split_size(const char *h5_path, const char *split, int64_t *num, CrnnError *err) {
    hid_t file = data_file_open(h5_path, NULL, err);
    if (file < 0) return -1;
    int elem_size;
    hid_t dset = split_open(file, h5_path, split, num, &elem_size, err);
    int rc = dset < 0 ? -1 : 0;
    CLOSE_ID(dset, H5Dclose);
    CLOSE_ID(file, H5Fclose);
    return rc;
}

static inline uint32_t token_at(const Batches *b, int64_t i) {
    return b->elem_size == 1 ? ((const uint8_t *)b->tokens)[i] : ((const uint32_t *)b->tokens)[i];
}

int dataset_load(Batches *b, const char *h5_path, const char *split, int N, int first, int B,
                 int S, int allow_shrink, int vocab_size, int *shrunk, CrnnError *err) {
    return dataset_load_shard(b, h5_path, split, N, first, B, S, allow_shrink, vocab_size, shrunk,
                              NULL, err);
}

int dataset_load_shard(Batches *b, const char *h5_path, const char *split, int N, int first,
                       int B, int S, int allow_shrink, int vocab_size, int *shrunk,
                       const void *mpi_comm, CrnnError *err) {
    memset(b, 0, sizeof *b);
    if (shrunk) *shrunk = 0;
    if (S < 1) return crnn_fail_usage(err, "-seq_length must be at least 1, got %d", S);
    if (N < 1) return crnn_fail_usage(err, "-batch_size must be at least 1, got %d streams", N);
    /* B = 0 only for one rank of many: it takes part in the collective read, reading nothing */
    if (first < 0 || B < (mpi_comm ? 0 : 1) || first > N - B)
        return crnn_fail(err, "streams %d..%d are not within the %d streams of /%s", first,
                         first + B - 1, N, split);
    if (vocab_size < 1) return crnn_fail(err, "the vocabulary is empty");

    hid_t file = data_file_open(h5_path, mpi_comm, err);
    if (file < 0) return -1;
    int64_t num = 0;
    int elem_size = 0;
    hid_t dset = split_open(file, h5_path, split, &num, &elem_size, err);
    if (dset < 0) {
        CLOSE_ID(file, H5Fclose);
        return -1;
    }

    int rc = -1;
    if ((int64_t)N * S > num - 1) {
        if (!allow_shrink) {
            crnn_fail_usage(err, "/%s in %s has %" PRId64 " tokens, too few for %d streams (-batch_size x ranks) of -seq_length %d (%d x %d + 1 = %" PRId64 " tokens needed); use a smaller -batch_size or -seq_length",
                      split, h5_path, num, N, S, N, S, (int64_t)N * S + 1);
            goto done;
        }
        int64_t n = num >= 1 ? (num - 1) / S : 0;
        if (n < 1) {
            crnn_fail_usage(err, "/%s in %s has %" PRId64 " tokens, too few for even one stream of -seq_length %d (%d + 1 = %d tokens needed); use a smaller -seq_length or a larger split (--val_frac/--test_frac of crnn-preprocess)",
                      split, h5_path, num, S, S, S + 1);
            goto done;
        }
        N = (int)n;
        first = 0;
        B = N;
        if (shrunk) *shrunk = 1;
    }
    int64_t NS = (int64_t)N * S;
    int64_t extra = num % NS;
    if (extra == 0) extra = NS;
    b->num = num;
    b->N = N;
    b->first = first;
    b->B = B;
    b->S = S;
    b->stream_len = (num - extra) / N;
    b->count = b->stream_len / S;
    b->elem_size = elem_size;

    /* tokens first*stream_len .. (first+B)*stream_len inclusive: x, and y one further */
    int64_t start = (int64_t)first * b->stream_len, count = B > 0 ? (int64_t)B * b->stream_len + 1 : 0;
    uint32_t none[1];
    b->tokens = count ? crnn_malloc((size_t)count * (size_t)elem_size, err) : NULL;
    const int have = count == 0 || b->tokens != NULL;
    /* under MPI-IO every rank takes part in the read, even one whose allocation failed */
    if (split_read_slice(dset, h5_path, split, start, have ? count : 0, elem_size, mpi_comm != NULL,
                         b->tokens ? b->tokens : (void *)none, err) < 0 ||
        !have)
        goto done;
    for (int64_t i = 0; i < count; i++) {
        uint32_t t = token_at(b, i);
        if (t < 1 || t > (uint32_t)vocab_size) {
            crnn_fail_corrupt(err, "token %" PRIu32 " at offset %" PRId64 " of /%s in %s is outside the vocabulary 1..%d; use the JSON file written together with this .h5 (the same crnn-preprocess run)",
                      t, start + i, split, h5_path, vocab_size);
            goto done;
        }
    }
    rc = 0;
done:
    CLOSE_ID(dset, H5Dclose);
    CLOSE_ID(file, H5Fclose);
    if (rc < 0) dataset_free(b);
    return rc;
}

void dataset_batch(const Batches *b, int64_t k, int32_t *x, int32_t *y) {
    int S = b->S;
    for (int s = 0; s < b->B; s++) {
        int64_t base = (int64_t)s * b->stream_len + k * S;
        for (int t = 0; t < S; t++) {
            x[s * S + t] = (int32_t)token_at(b, base + t) - 1;
            y[s * S + t] = (int32_t)token_at(b, base + t + 1) - 1;
        }
    }
}

void dataset_free(Batches *b) {
    free(b->tokens);
    memset(b, 0, sizeof *b);
}
