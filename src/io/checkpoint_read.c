/* Reading the HDF5 checkpoint (docs/FORMATS.md section 4): every attribute, shape and parameter is
 * validated and every message names the file and says what to do. Failures have kinds: a file
 * that opens but holds something wrong is CRNN_ERR_CORRUPT (-resume auto then falls back to an
 * older checkpoint), one that cannot be opened CRNN_ERR_IO, an allocation that fails
 * CRNN_ERR_NOMEM, and a file from a newer crnn (format_version, model_type, optimizer) another
 * kind. Every HDF5 call is checked; each helper closes what it opened on every path. */
#include "crnn/checkpoint.h"
#include "crnn/cell.h"

#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_internal.h"
#include "h5util.h"

#define ADVICE_OTHER "use another checkpoint, e.g. an earlier one"

/* ---------------------------------------------------------------------------------------- */
/* Reading */

/* 1 when every link along an absolute path exists, 0 when one does not, -1 on error. */
static int path_exists(hid_t file, const char *path) {
    char prefix[PATH_MAX_LEN];
    size_t len = strlen(path);
    if (len >= sizeof prefix) return 0;
    for (size_t i = 1; i <= len; i++) {
        if (i < len && path[i] != '/') continue;
        memcpy(prefix, path, i);
        prefix[i] = '\0';
        htri_t e = H5Lexists(file, prefix, H5P_DEFAULT);
        if (e <= 0) return e < 0 ? -1 : 0;
        if (i < len) { /* an inner part must be a group */
            hid_t obj = H5Oopen(file, prefix, H5P_DEFAULT);
            if (obj < 0) return -1;
            H5I_type_t type = H5Iget_type(obj);
            H5Oclose(obj);
            if (type != H5I_GROUP) return 0;
        }
    }
    return 1;
}

static const char *class_name(H5T_class_t c) {
    switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "floating point";
    case H5T_STRING: return "string";
    default: return "another type";
    }
}

static void shape_text(int ndim, const int64_t *dims, char *out, size_t len) {
    size_t n = (size_t)snprintf(out, len, "[");
    for (int i = 0; i < ndim && n < len; i++)
        n += dims[i] < 0 ? (size_t)snprintf(out + n, len - n, "%s*", i ? ", " : "")
                         : (size_t)snprintf(out + n, len - n, "%s%" PRId64, i ? ", " : "", dims[i]);
    if (n < len) snprintf(out + n, len - n, "]");
}

/* Opens an attribute of obj (named objname in messages) and checks it holds one value of class
 * cls (H5T_FLOAT also accepts integers). Returns the attribute, H5I_INVALID_HID with *absent = 1
 * when it does not exist, or H5I_INVALID_HID with a message. */
static hid_t attr_open(hid_t obj, const char *objname, const char *name, H5T_class_t cls,
                       int *absent, CrnnError *err) {
    *absent = 0;
    htri_t e = H5Aexists(obj, name);
    if (e == 0) {
        *absent = 1;
        crnn_fail_corrupt(err, "%s has no attribute '%s'; the file is incomplete or not from crnn-train; " ADVICE_OTHER, objname, name);
        return H5I_INVALID_HID;
    }
    hid_t attr = e > 0 ? H5Aopen(obj, name, H5P_DEFAULT) : H5I_INVALID_HID;
    if (attr < 0) {
        crnn_fail_corrupt(err, "cannot read the attribute %s of %s (corrupt?); " ADVICE_OTHER, name, objname);
        return H5I_INVALID_HID;
    }
    hid_t type = H5Aget_type(attr), space = H5Aget_space(attr);
    H5T_class_t c = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    hssize_t npoints = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    CLOSE_ID(type, H5Tclose);
    CLOSE_ID(space, H5Sclose);
    int ok = (c == cls || (cls == H5T_FLOAT && c == H5T_INTEGER)) && npoints == 1;
    if (!ok) {
        crnn_fail_corrupt(err, "the attribute %s of %s must be one %s value, got %s%s; " ADVICE_OTHER, name, objname,
                  class_name(cls), npoints == 1 ? "" : "an array of ",
                  c == H5T_NO_CLASS ? "an unreadable type" : class_name(c));
        H5Aclose(attr);
        return H5I_INVALID_HID;
    }
    return attr;
}

/* Reads a numeric attribute as mtype. Returns 1 when read, 0 when absent and !required
 * (*out untouched), -1 with a message. */
static int attr_read_num(hid_t obj, const char *objname, const char *name, H5T_class_t cls,
                         hid_t mtype, void *out, int required, CrnnError *err) {
    int absent;
    hid_t attr = attr_open(obj, objname, name, cls, &absent, err);
    if (attr < 0) return absent && !required ? 0 : -1;
    int rc = H5Aread(attr, mtype, out) >= 0 ? 1 : -1;
    H5Aclose(attr);
    if (rc < 0) crnn_fail_corrupt(err, "cannot read the attribute %s of %s (corrupt?); " ADVICE_OTHER, name, objname);
    return rc;
}

static int attr_read_i64(hid_t obj, const char *objname, const char *name, int64_t *v,
                         int required, CrnnError *err) {
    return attr_read_num(obj, objname, name, H5T_INTEGER, H5T_NATIVE_INT64, v, required, err);
}

static int attr_read_f64(hid_t obj, const char *objname, const char *name, double *v,
                         int required, CrnnError *err) {
    return attr_read_num(obj, objname, name, H5T_FLOAT, H5T_NATIVE_DOUBLE, v, required, err);
}

/* The whole of an attribute (is_attr) or a dataset as mtype. */
static herr_t read_whole(hid_t id, int is_attr, hid_t mtype, void *buf) {
    return is_attr ? H5Aread(id, mtype, buf) : H5Dread(id, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
}

/* Reads strings (variable or fixed length) from an attribute or dataset into n malloc'd C
 * strings; out[] starts all NULL and is all NULL again after a failure. Returns 0, -1 when
 * HDF5 cannot read them, or -2 when memory ran out (err says so). */
static int read_strings(hid_t id, int is_attr, hsize_t n, char **out, CrnnError *err) {
    hid_t ftype = is_attr ? H5Aget_type(id) : H5Dget_type(id), mtype = H5I_INVALID_HID;
    hid_t space = is_attr ? H5Aget_space(id) : H5Dget_space(id);
    int rc = -1, oom = 0;
    htri_t var = ftype >= 0 ? H5Tis_variable_str(ftype) : -1;
    if (var > 0) {
        char **ptrs = crnn_calloc(n, sizeof *ptrs, err);
        oom = !ptrs;
        /* the file's character set: HDF5 1.10 has no conversion path between ASCII and UTF-8
         * variable-length strings (it finds one only once a UTF-8 one is cached) */
        mtype = checkpoint_str_type();
        if (mtype >= 0 && H5Tset_cset(mtype, H5Tget_cset(ftype)) < 0) CLOSE_ID(mtype, H5Tclose);
        if (ptrs && mtype >= 0 && space >= 0) {
            if (read_whole(id, is_attr, mtype, ptrs) >= 0) {
                rc = 0;
                for (hsize_t i = 0; i < n && rc == 0; i++) {
                    const char *s = ptrs[i] ? ptrs[i] : "";
                    out[i] = crnn_malloc(strlen(s) + 1, err);
                    if (!out[i]) rc = -1, oom = 1;
                    else memcpy(out[i], s, strlen(s) + 1);
                }
            }
            /* also after a failed read: whatever strings it had made (the rest are NULL) */
#if H5_VERSION_GE(1, 12, 0)
            H5Treclaim(mtype, space, H5P_DEFAULT, ptrs);
#else
            H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, ptrs);
#endif
        }
        free(ptrs);
    } else if (var == 0) {
        size_t size = H5Tget_size(ftype);
        char *buf = size ? crnn_calloc(n, size, err) : NULL;
        oom = size && !buf;
        mtype = H5Tcopy(ftype);
        if (buf && mtype >= 0 && read_whole(id, is_attr, mtype, buf) >= 0) {
            rc = 0;
            for (hsize_t i = 0; i < n && rc == 0; i++) {
                size_t len = strnlen(buf + i * size, size);
                out[i] = crnn_malloc(len + 1, err);
                if (!out[i]) {
                    rc = -1;
                    oom = 1;
                    break;
                }
                memcpy(out[i], buf + i * size, len);
                out[i][len] = '\0';
            }
        }
        free(buf);
    }
    CLOSE_ID(mtype, H5Tclose);
    CLOSE_ID(ftype, H5Tclose);
    CLOSE_ID(space, H5Sclose);
    if (rc < 0) {
        for (hsize_t i = 0; i < n; i++) {
            free(out[i]);
            out[i] = NULL;
        }
    }
    return rc < 0 && oom ? -2 : rc;
}

/* Reads a string attribute into a malloc'd C string. Returns 1, 0 (absent, !required), -1,
 * or -2 when memory ran out. */
static int attr_read_str(hid_t obj, const char *objname, const char *name, char **out,
                         int required, CrnnError *err) {
    int absent;
    *out = NULL;
    hid_t attr = attr_open(obj, objname, name, H5T_STRING, &absent, err);
    if (attr < 0) return absent && !required ? 0 : -1;
    int rc = read_strings(attr, 1, 1, out, err);
    H5Aclose(attr);
    if (rc == -1) crnn_fail_corrupt(err, "cannot read the attribute %s of %s (corrupt?); " ADVICE_OTHER, name, objname);
    return rc < 0 ? rc : 1;
}

/* Opens a dataset and checks its class and shape. want_dims[i] < 0 accepts any extent;
 * dims gets the actual shape. Returns the dataset or -1 with a message. */
static hid_t dset_open_checked(hid_t file, const char *path, H5T_class_t cls, int ndim,
                               const int64_t *want_dims, int64_t *dims, const char *why,
                               CrnnError *err) {
    int e = path_exists(file, path);
    if (e <= 0) {
        crnn_fail_corrupt(err, "%s %s; the file is incomplete or not from crnn-train; " ADVICE_OTHER,
                  e < 0 ? "cannot look up" : "missing", path);
        return H5I_INVALID_HID;
    }
    hid_t dset = H5Dopen2(file, path, H5P_DEFAULT);
    if (dset < 0) {
        crnn_fail_corrupt(err, "cannot open %s as a dataset (truncated or corrupt?); " ADVICE_OTHER, path);
        return H5I_INVALID_HID;
    }
    hid_t type = H5Dget_type(dset), space = H5Dget_space(dset);
    H5T_class_t c = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    hsize_t hd[H5S_MAX_RANK];
    int ok = 0;
    if (c != cls) {
        crnn_fail_corrupt(err, "%s must hold %s values, got %s; " ADVICE_OTHER, path, class_name(cls),
                  c == H5T_NO_CLASS ? "an unreadable type" : class_name(c));
    } else if (nd < 0 || H5Sget_simple_extent_dims(space, hd, NULL) < 0) {
        crnn_fail_corrupt(err, "cannot read the shape of %s (corrupt?); " ADVICE_OTHER, path);
    } else {
        int64_t got[H5S_MAX_RANK];
        for (int i = 0; i < nd; i++) got[i] = (int64_t)hd[i];
        int match = nd == ndim;
        for (int i = 0; match && i < ndim; i++)
            if (want_dims[i] >= 0 && got[i] != want_dims[i]) match = 0;
        if (!match) {
            char g[96], w[96];
            shape_text(nd, got, g, sizeof g);
            shape_text(ndim, want_dims, w, sizeof w);
            crnn_fail_corrupt(err, "%s has shape %s, expected %s%s; " ADVICE_OTHER, path, g, w, why ? why : "");
        } else {
            for (int i = 0; i < ndim; i++) dims[i] = got[i];
            ok = 1;
        }
    }
    CLOSE_ID(type, H5Tclose);
    CLOSE_ID(space, H5Sclose);
    if (!ok) CLOSE_ID(dset, H5Dclose);
    return dset;
}

/* Reads a whole dataset as mtype into buf (which holds all of it). */
static int dset_read_all(hid_t dset, const char *path, hid_t mtype, void *buf, int64_t n,
                         CrnnError *err) {
    if (n == 0) return 0;
    if (H5Dread(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        return crnn_fail_corrupt(err, "cannot read %s (truncated or corrupt?); " ADVICE_OTHER, path);
    return 0;
}

static int check_finite(const float *x, size_t n, const char *path, CrnnError *err) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return crnn_fail_corrupt(err, "%s holds a non-finite value (%g at element %zu): the run had diverged when this was written; " ADVICE_OTHER,
                             path, (double)x[i], i);
    return 0;
}

/* A float dataset of exactly the given shape, read (converted to float32) into a new array. */
static int read_float_array(hid_t file, const char *path, int ndim, const int64_t *dims,
                            const char *why, float **out, CrnnError *err) {
    int64_t got[2];
    *out = NULL;
    hid_t d = dset_open_checked(file, path, H5T_FLOAT, ndim, dims, got, why, err);
    if (d < 0) return -1;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= got[i];
    *out = crnn_malloc((size_t)n * sizeof **out, err);
    int rc = *out ? dset_read_all(d, path, H5T_NATIVE_FLOAT, *out, n, err) : -1;
    H5Dclose(d);
    if (rc == 0) rc = check_finite(*out, (size_t)n, path, err);
    if (rc < 0) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* A 1-D dataset of any length and class cls, read as mtype into a new array. */
static int read_1d(hid_t file, const char *path, H5T_class_t cls, hid_t mtype, size_t elem,
                   void **out, int64_t *n, CrnnError *err) {
    int64_t any[1] = {-1};
    *out = NULL;
    hid_t d = dset_open_checked(file, path, cls, 1, any, n, NULL, err);
    if (d < 0) return -1;
    *out = crnn_malloc((size_t)*n * elem, err);
    int rc = *out ? dset_read_all(d, path, mtype, *out, *n, err) : -1;
    H5Dclose(d);
    if (rc < 0) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

static int read_root(hid_t file, Checkpoint *ck, CrnnError *err) {
    char *format = NULL, *model_type = NULL;
    int rc = attr_read_str(file, "/", "format", &format, 0, err);
    if (rc == 0 || (rc > 0 && strcmp(format, CKPT_FORMAT) != 0)) {
        if (rc == 0)
            crnn_fail_corrupt(err, "not a crnn checkpoint (no 'format' attribute); give a checkpoint written by crnn-train");
        else
            crnn_fail_corrupt(err, "not a crnn checkpoint (its 'format' attribute is '%.64s', expected '%s'); give a checkpoint written by crnn-train",
                      format, CKPT_FORMAT);
        free(format);
        return -1;
    }
    free(format);
    if (rc == -1) return crnn_fail_context(err, "not a crnn checkpoint (give a checkpoint written by crnn-train)");
    if (rc < 0) return -1;
    int64_t version = 0;
    if (attr_read_i64(file, "/", "format_version", &version, 1, err) < 0) return -1;
    if (version > CKPT_FORMAT_VERSION)
        return crnn_fail(err, "format_version %" PRId64 " is newer than this crnn reads (%d); use a newer crnn",
                         version, CKPT_FORMAT_VERSION);
    if (version < 1) return crnn_fail_corrupt(err, "invalid format_version %" PRId64 "; " ADVICE_OTHER, version);
    if (attr_read_str(file, "/", "model_type", &model_type, 1, err) < 0) return -1;
    if (!cell_find(model_type)) {
        char names[64];
        crnn_fail(err, "unknown model_type '%.32s' (crnn knows %s); use a newer crnn or another checkpoint", model_type,
                  cell_names(names, sizeof names, "and"));
        free(model_type);
        return -1;
    }
    snprintf(ck->model.model_type, sizeof ck->model.model_type, "%s", model_type);
    free(model_type);
    char *written_by = NULL; /* optional: files before it, and other writers, have none */
    if (attr_read_str(file, "/", "crnn_version", &written_by, 0, err) < 0) return -1;
    snprintf(ck->crnn_version, sizeof ck->crnn_version, "%s", written_by ? written_by : "");
    free(written_by);

    struct {
        const char *name;
        int *field;
        int64_t min, max;
    } sizes[] = {
        {"vocab_size", &ck->model.V, 1, INT_MAX},
        {"wordvec_size", &ck->model.D, 0, INT_MAX},
        {"rnn_size", &ck->model.H, 1, INT_MAX},
        {"num_layers", &ck->model.L, 1, CRNN_MAX_LAYERS},
    };
    for (size_t i = 0; i < CRNN_ARRAY_LEN(sizes); i++) {
        int64_t v;
        if (attr_read_i64(file, "/", sizes[i].name, &v, 1, err) < 0) return -1;
        if (v < sizes[i].min || v > sizes[i].max)
            return crnn_fail_corrupt(err, "the attribute %s is %" PRId64 ", outside %" PRId64 "..%" PRId64 "; " ADVICE_OTHER,
                             sizes[i].name, v, sizes[i].min, sizes[i].max);
        *sizes[i].field = (int)v;
    }
    /* files made only for -init_from by other tools may leave these out; read_state
     * requires them */
    ck->model.dropout = 0;
    if (attr_read_f64(file, "/", "dropout", &ck->model.dropout, 0, err) < 0) return -1;
    if (!(ck->model.dropout >= 0 && ck->model.dropout < 1))
        return crnn_fail_corrupt(err, "the attribute dropout is %g, outside [0, 1); " ADVICE_OTHER, ck->model.dropout);
    if (attr_read_i64(file, "/", "iteration", &ck->iteration, 0, err) < 0) return -1;
    if (ck->iteration < 0)
        return crnn_fail_corrupt(err, "the attribute iteration is negative (%" PRId64 "); " ADVICE_OTHER, ck->iteration);
    if (attr_read_f64(file, "/", "epoch", &ck->epoch, 0, err) < 0) return -1;
    if (!(ck->epoch >= 0) || !isfinite(ck->epoch))
        return crnn_fail_corrupt(err, "the attribute epoch is %g, expected a finite value >= 0; " ADVICE_OTHER, ck->epoch);
    /* optional: files before it, and other writers, have none (0: the time is not known) */
    ck->elapsed_seconds = 0;
    if (attr_read_f64(file, "/", "elapsed_seconds", &ck->elapsed_seconds, 0, err) < 0) return -1;
    if (!(ck->elapsed_seconds >= 0) || !isfinite(ck->elapsed_seconds))
        return crnn_fail_corrupt(err, "the attribute elapsed_seconds is %g, expected a finite value >= 0; " ADVICE_OTHER,
                         ck->elapsed_seconds);
    return 0;
}

typedef struct ConfigReader {
    Checkpoint *ck;
    int cap;
    CrnnError *err;
} ConfigReader;

static herr_t config_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
    (void)info;
    ConfigReader *r = data;
    Checkpoint *ck = r->ck;
    if (strlen(name) >= sizeof ck->config[0].name) {
        crnn_fail_corrupt(r->err, "the /config attribute name '%.64s...' is too long; " ADVICE_OTHER, name);
        return -1;
    }
    if (ck->num_config == r->cap) {
        int cap = r->cap ? 2 * r->cap : 32;
        ConfigEntry *c = realloc(ck->config, (size_t)cap * sizeof *c);
        if (!c) {
            crnn_fail_nomem(r->err, "out of memory reading /config");
            return -1;
        }
        ck->config = c;
        r->cap = cap;
    }
    hid_t attr = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t type = attr >= 0 ? H5Aget_type(attr) : H5I_INVALID_HID;
    H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    CLOSE_ID(type, H5Tclose);
    CLOSE_ID(attr, H5Aclose);
    ConfigEntry *e = &ck->config[ck->num_config];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    int rc;
    switch (cls) {
    case H5T_INTEGER:
        e->type = CONFIG_INT;
        rc = attr_read_i64(loc, "/config", name, &e->i, 1, r->err);
        break;
    case H5T_FLOAT:
        e->type = CONFIG_REAL;
        rc = attr_read_f64(loc, "/config", name, &e->d, 1, r->err);
        break;
    case H5T_STRING:
        e->type = CONFIG_STRING;
        rc = attr_read_str(loc, "/config", name, &e->s, 1, r->err);
        break;
    default:
        rc = crnn_fail_corrupt(r->err, "the /config attribute %s is not an integer, a float or a string; " ADVICE_OTHER,
                       name);
    }
    if (rc < 0) return -1;
    ck->num_config++;
    return 0;
}

static int read_config(hid_t file, Checkpoint *ck, CrnnError *err) {
    int e = path_exists(file, "/config");
    if (e < 0) return crnn_fail_corrupt(err, "cannot look up /config (corrupt?); " ADVICE_OTHER);
    if (e == 0) return 0; /* params-only files */
    hid_t g = H5Gopen2(file, "/config", H5P_DEFAULT);
    if (g < 0) return crnn_fail_corrupt(err, "cannot open /config as a group (corrupt?); " ADVICE_OTHER);
    hid_t gcpl = H5Gget_create_plist(g);
    unsigned order = 0;
    if (gcpl >= 0) H5Pget_attr_creation_order(gcpl, &order);
    CLOSE_ID(gcpl, H5Pclose);
    H5_index_t index = (order & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
    ConfigReader r = {ck, 0, err};
    err->msg[0] = '\0';
    herr_t rc = H5Aiterate2(g, index, H5_ITER_INC, NULL, config_attr, &r);
    H5Gclose(g);
    if (rc < 0) {
        if (err->msg[0] == '\0') crnn_fail_corrupt(err, "cannot read the attributes of /config (corrupt?); " ADVICE_OTHER);
        return -1;
    }
    return 0;
}

static int read_vocab(hid_t file, Checkpoint *ck, CrnnError *err) {
    int64_t any[1] = {-1}, n;
    int e = path_exists(file, "/vocab");
    if (e <= 0)
        return crnn_fail_corrupt(err, "%s /vocab; the file is incomplete or not from crnn-train; " ADVICE_OTHER,
                         e < 0 ? "cannot look up" : "missing");
    hid_t g = H5Gopen2(file, "/vocab", H5P_DEFAULT);
    if (g < 0) return crnn_fail_corrupt(err, "cannot open /vocab as a group (corrupt?); " ADVICE_OTHER);
    char *encoding = NULL;
    int have_enc = attr_read_str(g, "/vocab", "encoding", &encoding, 0, err);
    H5Gclose(g);
    if (have_enc < 0) return -1;
    int enc = -1; /* -1: not given, found from the tokens as for torch-rnn's JSON */
    if (have_enc) {
        if (strcmp(encoding, "utf-8") == 0) enc = VOCAB_UTF8;
        else if (strcmp(encoding, "bytes") == 0) enc = VOCAB_BYTES;
        else {
            crnn_fail_corrupt(err, "the /vocab attribute encoding is '%.32s', expected 'utf-8' or 'bytes'; " ADVICE_OTHER,
                      encoding);
            free(encoding);
            return -1;
        }
    }
    free(encoding);

    hid_t d = dset_open_checked(file, "/vocab/idx_to_token", H5T_STRING, 1, any, &n, NULL, err);
    if (d < 0) return -1;
    if (n != ck->model.V) {
        H5Dclose(d);
        return crnn_fail_corrupt(err, "vocab_size is %d but /vocab/idx_to_token holds %" PRId64 " tokens; " ADVICE_OTHER,
                         ck->model.V, n);
    }
    char **names = crnn_calloc((size_t)n, sizeof *names, err);
    uint32_t *tokens = crnn_calloc((size_t)n, sizeof *tokens, err);
    int rc = names && tokens ? read_strings(d, 0, (hsize_t)n, names, err) : -1;
    H5Dclose(d);
    if (rc == -1 && names && tokens)
        crnn_fail_corrupt(err, "cannot read /vocab/idx_to_token (truncated or corrupt?); " ADVICE_OTHER);
    if (rc == 0) {
        if (enc < 0) { /* utf-8 unless some token only reads as a byte ("[200]") */
            enc = VOCAB_UTF8;
            for (int64_t i = 0; i < n; i++)
                if (vocab_parse_token_name(VOCAB_UTF8, names[i], &tokens[i]) < 0) enc = VOCAB_BYTES;
        }
        for (int64_t i = 0; i < n && rc == 0; i++)
            if (vocab_parse_token_name((VocabEncoding)enc, names[i], &tokens[i]) < 0)
                rc = crnn_fail_corrupt(err, "row %" PRId64 " of /vocab/idx_to_token, '%.32s', is not a %s token; " ADVICE_OTHER,
                               i, names[i], enc == VOCAB_BYTES ? "bytes" : "utf-8");
    }
    if (rc == 0 && vocab_from_tokens(&ck->vocab, (VocabEncoding)enc, tokens, (int)n, err) < 0)
        rc = crnn_fail_context(err, "/vocab/idx_to_token");
    if (names)
        for (int64_t i = 0; i < n; i++) free(names[i]);
    free(names);
    free(tokens);
    return rc;
}

static int read_params(hid_t file, Checkpoint *ck, CrnnError *err) {
    ParamTensor tensors[CRNN_MAX_TENSORS];
    size_t num_params = 0;
    int nt = model_layout(&ck->model, tensors, &num_params);
    char why[160];
    snprintf(why, sizeof why, " for model_type %s, vocab_size %d, wordvec_size %d, rnn_size %d (the root attributes)",
             ck->model.model_type, ck->model.V, ck->model.D, ck->model.H);
    /* shapes first, so that sizes in the root attributes that the arrays do not back up
     * never turn into a large allocation */
    for (int i = 0; i < nt; i++) {
        if (tensors[i].size == 0) continue;
        char path[PATH_MAX_LEN];
        int64_t got[2];
        snprintf(path, sizeof path, "/%.*s", (int)sizeof tensors[i].name, tensors[i].name);
        hid_t d = dset_open_checked(file, path, H5T_FLOAT, tensors[i].ndim, tensors[i].dims, got,
                                    why, err);
        if (d < 0) return -1;
        H5Dclose(d);
    }
    ck->num_params = num_params;
    ck->params = crnn_malloc(num_params * sizeof *ck->params, err);
    if (!ck->params) return -1;
    for (int i = 0; i < nt; i++) {
        const ParamTensor *t = &tensors[i];
        if (t->size == 0) continue;
        char path[PATH_MAX_LEN];
        int64_t got[2];
        snprintf(path, sizeof path, "/%.*s", (int)sizeof t->name, t->name);
        hid_t d = dset_open_checked(file, path, H5T_FLOAT, t->ndim, t->dims, got, why, err);
        if (d < 0) return -1;
        int rc = dset_read_all(d, path, H5T_NATIVE_FLOAT, ck->params + t->offset,
                               (int64_t)t->size, err);
        H5Dclose(d);
        if (rc < 0 || check_finite(ck->params + t->offset, t->size, path, err) < 0) return -1;
    }
    return 0;
}

/* /optim's attributes, and where training stood (the root's dropout, iteration, epoch). */
static int read_optim(hid_t file, Checkpoint *ck, CrnnError *err) {
    int e = path_exists(file, "/optim");
    if (e <= 0)
        return crnn_fail_corrupt(err, "%s /optim: this file holds no training state (made for -init_from?); resume from a checkpoint written by crnn-train, or use -init_from",
                         e < 0 ? "cannot look up" : "missing");
    /* where training stood: optional in params-only files, required to resume */
    double dropout, epoch;
    int64_t iteration;
    if (attr_read_f64(file, "/", "dropout", &dropout, 1, err) < 0 ||
        attr_read_i64(file, "/", "iteration", &iteration, 1, err) < 0 ||
        attr_read_f64(file, "/", "epoch", &epoch, 1, err) < 0)
        return -1;
    hid_t g = H5Gopen2(file, "/optim", H5P_DEFAULT);
    if (g < 0) return crnn_fail_corrupt(err, "cannot open /optim as a group (corrupt?); " ADVICE_OTHER);
    char *name = NULL;
    int rc = 0;
    if (attr_read_str(g, "/optim", "name", &name, 1, err) < 0 ||
        attr_read_i64(g, "/optim", "step", &ck->optim_step, 1, err) < 0 ||
        attr_read_f64(g, "/optim", "learning_rate", &ck->learning_rate, 1, err) < 0)
        rc = -1;
    H5Gclose(g);
    if (rc == 0 && strcmp(name, "adam") != 0 && strcmp(name, "rmsprop") != 0)
        rc = crnn_fail(err, "unknown optimizer '%.32s' in /optim (crnn knows adam and rmsprop); use a newer crnn or another checkpoint", name);
    if (rc == 0) snprintf(ck->optim_name, sizeof ck->optim_name, "%s", name);
    free(name);
    if (rc < 0) return -1;
    if (ck->optim_step < 0) return crnn_fail_corrupt(err, "the /optim attribute step is negative; " ADVICE_OTHER);
    if (!isfinite(ck->learning_rate) || ck->learning_rate < 0)
        return crnn_fail_corrupt(err, "the /optim attribute learning_rate is %g; " ADVICE_OTHER, ck->learning_rate);

    /* the moments */
    int64_t flat[1] = {(int64_t)ck->num_params};
    const char *flat_why = " (one value per parameter)";
    if (strcmp(ck->optim_name, "adam") == 0 &&
        read_float_array(file, "/optim/m", 1, flat, flat_why, &ck->optim_m, err) < 0)
        return -1;
    if (read_float_array(file, "/optim/v", 1, flat, flat_why, &ck->optim_v, err) < 0) return -1;
    return 0;
}

/* /state/rng and /state/data's attributes. */
static int read_position(hid_t file, Checkpoint *ck, CrnnError *err) {
    int64_t n;
    void *p;
    if (read_1d(file, "/state/rng", H5T_INTEGER, H5T_NATIVE_UINT64, sizeof(uint64_t), &p, &n,
                err) < 0)
        return -1;
    ck->rng = p;
    if (n > INT_MAX) return crnn_fail_corrupt(err, "/state/rng is too long (%" PRId64 "); " ADVICE_OTHER, n);
    ck->num_rng = (int)n;

    int e = path_exists(file, "/state/data");
    if (e <= 0)
        return crnn_fail_corrupt(err, "%s /state/data; the file is incomplete; " ADVICE_OTHER,
                         e < 0 ? "cannot look up" : "missing");
    hid_t g = H5Gopen2(file, "/state/data", H5P_DEFAULT);
    if (g < 0) return crnn_fail_corrupt(err, "cannot open /state/data as a group (corrupt?); " ADVICE_OTHER);
    int64_t streams = 0;
    int rc = 0;
    if (attr_read_i64(g, "/state/data", "streams", &streams, 1, err) < 0 ||
        attr_read_i64(g, "/state/data", "batch_index", &ck->batch_index, 1, err) < 0 ||
        attr_read_i64(g, "/state/data", "epoch_index", &ck->epoch_index, 1, err) < 0)
        rc = -1;
    H5Gclose(g);
    if (rc < 0) return -1;
    if (streams < 0 || streams > INT_MAX)
        return crnn_fail_corrupt(err, "the /state/data attribute streams is %" PRId64 "; " ADVICE_OTHER, streams);
    if (ck->batch_index < 0 || ck->epoch_index < 0)
        return crnn_fail_corrupt(err, "the /state/data attributes batch_index and epoch_index must be >= 0; " ADVICE_OTHER);
    ck->streams = (int)streams;
    return 0;
}

/* /state/hidden/<l>/{h,c}: [streams, H] per layer into [L, streams, H]. */
static int read_hidden(hid_t file, Checkpoint *ck, CrnnError *err) {
    const ModelConfig *m = &ck->model;
    int64_t streams = ck->streams;
    int has_c = cell_find(m->model_type)->has_cell_state; /* checked by the reader above */
    size_t per_layer = (size_t)streams * (size_t)m->H;
    int64_t hdims[2] = {streams, m->H};
    char why[96];
    snprintf(why, sizeof why, " (streams %" PRId64 " in /state/data, rnn_size %d)", streams, m->H);
    for (int l = 0; l < m->L; l++) {
        for (int which = 0; which < 1 + has_c; which++) {
            char path[PATH_MAX_LEN];
            snprintf(path, sizeof path, "/state/hidden/%d/%s", l, which ? "c" : "h");
            float *a;
            if (read_float_array(file, path, 2, hdims, why, &a, err) < 0) return -1;
            if (l == 0 && which == 0) { /* streams is backed by an array: allocate it all */
                ck->hidden_h = crnn_malloc((size_t)m->L * per_layer * sizeof *a, err);
                ck->hidden_c = has_c ? crnn_malloc((size_t)m->L * per_layer * sizeof *a, err) : NULL;
                if (!ck->hidden_h || (has_c && !ck->hidden_c)) {
                    free(a);
                    return -1;
                }
            }
            memcpy((which ? ck->hidden_c : ck->hidden_h) + l * per_layer, a, per_layer * sizeof *a);
            free(a);
        }
    }
    return 0;
}

/* /history: the train and validation losses. */
static int read_history(hid_t file, Checkpoint *ck, CrnnError *err) {
    int64_t any[1] = {-1}, n, nv;
    int rc;
    hid_t d = dset_open_checked(file, "/history/train_loss", H5T_FLOAT, 1, any, &n, NULL, err);
    if (d < 0) return -1;
    ck->num_train_loss = n;
    ck->train_loss = crnn_malloc((size_t)n * sizeof *ck->train_loss, err);
    rc = ck->train_loss ? dset_read_all(d, "/history/train_loss", H5T_NATIVE_FLOAT,
                                        ck->train_loss, n, err) : -1;
    H5Dclose(d);
    if (rc < 0) return -1;
    d = dset_open_checked(file, "/history/val_loss", H5T_FLOAT, 1, any, &nv, NULL, err);
    if (d < 0) return -1;
    ck->num_val = nv;
    ck->val_loss = crnn_malloc((size_t)nv * sizeof *ck->val_loss, err);
    rc = ck->val_loss ? dset_read_all(d, "/history/val_loss", H5T_NATIVE_FLOAT, ck->val_loss, nv,
                                      err) : -1;
    H5Dclose(d);
    if (rc < 0) return -1;
    int64_t want[1] = {nv};
    d = dset_open_checked(file, "/history/val_iteration", H5T_INTEGER, 1, want, &n,
                          " (one per /history/val_loss)", err);
    if (d < 0) return -1;
    ck->val_iteration = crnn_malloc((size_t)nv * sizeof *ck->val_iteration, err);
    rc = ck->val_iteration ? dset_read_all(d, "/history/val_iteration", H5T_NATIVE_INT64,
                                           ck->val_iteration, nv, err) : -1;
    H5Dclose(d);
    if (rc < 0) return -1;
    return 0;
}

static int read_state(hid_t file, Checkpoint *ck, CrnnError *err) {
    if (read_optim(file, ck, err) < 0 || read_position(file, ck, err) < 0 || read_hidden(file, ck, err) < 0 ||
        read_history(file, ck, err) < 0)
        return -1;
    ck->has_state = 1;
    return 0;
}

int checkpoint_read(const char *path, Checkpoint *ck, int want_state, CrnnError *err) {
    memset(ck, 0, sizeof *ck);
    CrnnError local;
    if (!err) err = &local;
    struct stat st;
    if (stat(path, &st) != 0)
        return crnn_fail_io(err, "cannot open the checkpoint %s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return crnn_fail_io(err, "cannot open the checkpoint %s: it is a folder", path);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        if (access(path, R_OK) != 0)
            return crnn_fail_io(err, "cannot open the checkpoint %s: %s", path, strerror(errno));
        return crnn_fail_corrupt(err, "%s is not a readable HDF5 file (truncated or corrupt?); " ADVICE_OTHER,
                         path);
    }
    int rc = -1;
    if (read_root(file, ck, err) == 0 && read_config(file, ck, err) == 0 &&
        read_vocab(file, ck, err) == 0 && read_params(file, ck, err) == 0 &&
        (!want_state || read_state(file, ck, err) == 0))
        rc = 0;
    if (H5Fclose(file) < 0 && rc == 0)
        rc = crnn_fail_corrupt(err, "cannot close the file (corrupt?); " ADVICE_OTHER);
    if (rc < 0) {
        checkpoint_free(ck);
        crnn_fail_context(err, "checkpoint %s", path);
    }
    return rc;
}

void checkpoint_free(Checkpoint *ck) {
    for (int i = 0; i < ck->num_config; i++)
        if (ck->config[i].type == CONFIG_STRING) free(ck->config[i].s);
    free(ck->config);
    vocab_free(&ck->vocab);
    free(ck->params);
    free(ck->optim_m);
    free(ck->optim_v);
    free(ck->rng);
    free(ck->hidden_h);
    free(ck->hidden_c);
    free(ck->train_loss);
    free(ck->val_loss);
    free(ck->val_iteration);
    memset(ck, 0, sizeof *ck);
}

const ConfigEntry *checkpoint_config(const Checkpoint *ck, const char *name) {
    for (int i = 0; i < ck->num_config; i++)
        if (strcmp(ck->config[i].name, name) == 0) return &ck->config[i];
    return NULL;
}
