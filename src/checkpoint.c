/* The HDF5 checkpoint (FORMATS.md section 4). Writing goes to `path.tmp`, which is closed,
 * fsync'd and renamed onto `path`, then the folder is fsync'd: a crash leaves either the old
 * file or the new one under the name, never a half-written one. Reading validates every
 * attribute, shape and parameter and names the file in every message. Every HDF5 call is
 * checked; each helper closes what it opened on every path. */
#include "crnn/checkpoint.h"
#include "crnn/version.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5util.h"


#define PATH_MAX_LEN 96 /* HDF5 object paths inside a checkpoint ("/state/hidden/63/h") */
#define ADVICE_OTHER "use another checkpoint, e.g. an earlier one"

/* ---------------------------------------------------------------------------------------- */
/* Writing */

static hid_t str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return t;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

/* A scalar attribute of file type ftype from *value of memory type mtype. */
static int attr_write(hid_t obj, const char *objname, const char *name, hid_t ftype, hid_t mtype,
                      const void *value, CrnnError *err) {
    hid_t space = H5Screate(H5S_SCALAR), attr = H5I_INVALID_HID;
    int rc = -1;
    if (space >= 0) attr = H5Acreate2(obj, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr >= 0 && H5Awrite(attr, mtype, value) >= 0) rc = 0;
    CLOSE_ID(attr, H5Aclose);
    CLOSE_ID(space, H5Sclose);
    if (rc < 0) crnn_fail(err, "cannot write the attribute %s of %s", name, objname);
    return rc;
}

static int attr_write_i64(hid_t obj, const char *objname, const char *name, int64_t v,
                          CrnnError *err) {
    return attr_write(obj, objname, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, err);
}

static int attr_write_f64(hid_t obj, const char *objname, const char *name, double v,
                          CrnnError *err) {
    return attr_write(obj, objname, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, err);
}

static int attr_write_str(hid_t obj, const char *objname, const char *name, const char *v,
                          CrnnError *err) {
    hid_t t = str_type();
    if (t < 0) return crnn_fail(err, "cannot make a string type");
    const char *s = v ? v : "";
    int rc = attr_write(obj, objname, name, t, t, &s, err);
    H5Tclose(t);
    return rc;
}

/* A dataset at an absolute path (parent groups made as needed) of shape dims. */
static int dset_write(hid_t file, const char *path, hid_t ftype, hid_t mtype, int ndim,
                      const hsize_t *dims, const void *data, CrnnError *err) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), space = H5I_INVALID_HID, dset = H5I_INVALID_HID;
    int rc = -1;
    hsize_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    if (lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) >= 0)
        space = H5Screate_simple(ndim, dims, NULL);
    if (space >= 0) dset = H5Dcreate2(file, path, ftype, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (dset >= 0 && (n == 0 || H5Dwrite(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0))
        rc = 0;
    CLOSE_ID(dset, H5Dclose);
    CLOSE_ID(space, H5Sclose);
    CLOSE_ID(lcpl, H5Pclose);
    if (rc < 0) crnn_fail(err, "cannot write %s (disk full?)", path);
    return rc;
}

static hid_t group_create(hid_t file, const char *path, int track_order, CrnnError *err) {
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE), g = H5I_INVALID_HID;
    if (gcpl >= 0 &&
        (!track_order ||
         H5Pset_attr_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) >= 0))
        g = H5Gcreate2(file, path, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    CLOSE_ID(gcpl, H5Pclose);
    if (g < 0) crnn_fail(err, "cannot create the group %s", path);
    return g;
}

static int write_root(hid_t file, const Checkpoint *ck, CrnnError *err) {
    const ModelConfig *m = &ck->model;
    if (attr_write_str(file, "/", "format", CKPT_FORMAT, err) < 0 ||
        attr_write_i64(file, "/", "format_version", CKPT_FORMAT_VERSION, err) < 0 ||
        attr_write_str(file, "/", "model_type", m->model_type, err) < 0 ||
        attr_write_i64(file, "/", "vocab_size", m->V, err) < 0 ||
        attr_write_i64(file, "/", "wordvec_size", m->D, err) < 0 ||
        attr_write_i64(file, "/", "rnn_size", m->H, err) < 0 ||
        attr_write_i64(file, "/", "num_layers", m->L, err) < 0 ||
        attr_write_f64(file, "/", "dropout", m->dropout, err) < 0 ||
        attr_write_i64(file, "/", "iteration", ck->iteration, err) < 0 ||
        attr_write_f64(file, "/", "epoch", ck->epoch, err) < 0 ||
        attr_write_str(file, "/", "crnn_version", crnn_version_text(), err) < 0 ||
        attr_write_f64(file, "/", "elapsed_seconds", ck->elapsed_seconds, err) < 0)
        return -1;
    return 0;
}

static int write_config(hid_t file, const Checkpoint *ck, CrnnError *err) {
    hid_t g = group_create(file, "/config", 1, err);
    if (g < 0) return -1;
    int rc = 0;
    for (int i = 0; i < ck->num_config && rc == 0; i++) {
        const ConfigEntry *e = &ck->config[i];
        switch (e->type) {
        case CONFIG_INT: rc = attr_write_i64(g, "/config", e->name, e->i, err); break;
        case CONFIG_REAL: rc = attr_write_f64(g, "/config", e->name, e->d, err); break;
        case CONFIG_STRING: rc = attr_write_str(g, "/config", e->name, e->s, err); break;
        default: rc = crnn_fail(err, "config entry %s has an unknown type", e->name);
        }
    }
    H5Gclose(g);
    return rc;
}

static int write_vocab(hid_t file, const Vocab *v, CrnnError *err) {
    hid_t g = group_create(file, "/vocab", 0, err);
    if (g < 0) return -1;
    int rc = attr_write_str(g, "/vocab", "encoding", v->encoding == VOCAB_BYTES ? "bytes" : "utf-8",
                            err);
    char (*names)[16] = NULL;
    const char **ptrs = NULL;
    hid_t t = H5I_INVALID_HID;
    if (rc == 0) {
        names = crnn_malloc((size_t)v->size * sizeof *names, err);
        ptrs = crnn_malloc((size_t)v->size * sizeof *ptrs, err);
        t = str_type();
        if (!names || !ptrs || t < 0) rc = crnn_fail_nomem(err, "out of memory writing /vocab");
    }
    if (rc == 0) {
        for (int i = 0; i < v->size; i++) {
            vocab_token_name(v, i, names[i]);
            ptrs[i] = names[i];
        }
        hsize_t dims[1] = {(hsize_t)v->size};
        rc = dset_write(file, "/vocab/idx_to_token", t, t, 1, dims, ptrs, err);
    }
    CLOSE_ID(t, H5Tclose);
    free(names);
    free(ptrs);
    H5Gclose(g);
    return rc;
}

static int write_floats(hid_t file, const char *path, int ndim, const hsize_t *dims,
                        const float *data, CrnnError *err) {
    return dset_write(file, path, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ndim, dims, data, err);
}

static int write_state(hid_t file, const Checkpoint *ck, size_t num_params, CrnnError *err) {
    const ModelConfig *m = &ck->model;
    hid_t g = group_create(file, "/optim", 0, err);
    if (g < 0) return -1;
    int rc = 0;
    if (attr_write_str(g, "/optim", "name", ck->optim_name, err) < 0 ||
        attr_write_i64(g, "/optim", "step", ck->optim_step, err) < 0 ||
        attr_write_f64(g, "/optim", "learning_rate", ck->learning_rate, err) < 0)
        rc = -1;
    H5Gclose(g);
    if (rc < 0) return -1;
    hsize_t flat[1] = {(hsize_t)num_params};
    if (ck->optim_m && write_floats(file, "/optim/m", 1, flat, ck->optim_m, err) < 0) return -1;
    if (write_floats(file, "/optim/v", 1, flat, ck->optim_v, err) < 0) return -1;

    hsize_t nrng[1] = {(hsize_t)ck->num_rng};
    if (dset_write(file, "/state/rng", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, nrng, ck->rng, err) < 0)
        return -1;
    size_t per_layer = (size_t)ck->streams * (size_t)m->H;
    hsize_t hdims[2] = {(hsize_t)ck->streams, (hsize_t)m->H};
    for (int l = 0; l < m->L; l++) {
        char path[PATH_MAX_LEN];
        snprintf(path, sizeof path, "/state/hidden/%d/h", l);
        if (write_floats(file, path, 2, hdims, ck->hidden_h + l * per_layer, err) < 0) return -1;
        if (ck->hidden_c) {
            snprintf(path, sizeof path, "/state/hidden/%d/c", l);
            if (write_floats(file, path, 2, hdims, ck->hidden_c + l * per_layer, err) < 0)
                return -1;
        }
    }
    g = group_create(file, "/state/data", 0, err);
    if (g < 0) return -1;
    if (attr_write_i64(g, "/state/data", "streams", ck->streams, err) < 0 ||
        attr_write_i64(g, "/state/data", "batch_index", ck->batch_index, err) < 0 ||
        attr_write_i64(g, "/state/data", "epoch_index", ck->epoch_index, err) < 0)
        rc = -1;
    H5Gclose(g);
    if (rc < 0) return -1;

    hsize_t ntrain[1] = {(hsize_t)ck->num_train_loss}, nval[1] = {(hsize_t)ck->num_val};
    if (write_floats(file, "/history/train_loss", 1, ntrain, ck->train_loss, err) < 0 ||
        write_floats(file, "/history/val_loss", 1, nval, ck->val_loss, err) < 0 ||
        dset_write(file, "/history/val_iteration", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, nval,
                   ck->val_iteration, err) < 0)
        return -1;
    return 0;
}

/* Checks that what the caller gives is consistent before anything is written. */
static int check_for_write(const Checkpoint *ck, size_t num_params, CrnnError *err) {
    const ModelConfig *m = &ck->model;
    if (!model_gates(m->model_type))
        return crnn_fail(err, "unknown model_type '%s'", m->model_type);
    if (m->V < 1 || m->D < 0 || m->H < 1 || m->L < 1 || m->L > CRNN_MAX_LAYERS)
        return crnn_fail(err, "invalid model sizes (V %d, D %d, H %d, L %d)", m->V, m->D, m->H,
                         m->L);
    if (ck->vocab.size != m->V)
        return crnn_fail(err, "the vocabulary has %d tokens but vocab_size is %d", ck->vocab.size,
                         m->V);
    if (ck->num_params != num_params || !ck->params)
        return crnn_fail(err, "%zu parameters given, the model has %zu", ck->num_params,
                         num_params);
    for (int i = 0; i < ck->num_config; i++)
        if (ck->config[i].name[0] == '\0') return crnn_fail(err, "config entry %d has no name", i);
    if (!ck->has_state) return 0;
    if (!ck->optim_v) return crnn_fail(err, "no optimizer moments to write");
    if (ck->num_rng < 0 || (ck->num_rng > 0 && !ck->rng))
        return crnn_fail(err, "no generator state to write");
    if (ck->streams < 0 || (ck->streams > 0 && !ck->hidden_h) ||
        (ck->streams > 0 && strcmp(m->model_type, "lstm") == 0 && !ck->hidden_c))
        return crnn_fail(err, "no hidden state to write for %d streams", ck->streams);
    if (ck->num_train_loss < 0 || (ck->num_train_loss > 0 && !ck->train_loss) ||
        ck->num_val < 0 || (ck->num_val > 0 && (!ck->val_loss || !ck->val_iteration)))
        return crnn_fail(err, "no loss history to write");
    return 0;
}

static int write_contents(hid_t file, const Checkpoint *ck, const ParamTensor *tensors,
                          int num_tensors, size_t num_params, CrnnError *err) {
    if (write_root(file, ck, err) < 0 || write_config(file, ck, err) < 0 ||
        write_vocab(file, &ck->vocab, err) < 0)
        return -1;
    for (int i = 0; i < num_tensors; i++) {
        const ParamTensor *t = &tensors[i];
        if (t->size == 0) continue; /* the embedding of a one-hot model (D = 0) */
        char path[PATH_MAX_LEN];
        snprintf(path, sizeof path, "/%.*s", (int)sizeof t->name, t->name);
        hsize_t dims[2] = {(hsize_t)t->dims[0], (hsize_t)t->dims[1]};
        if (write_floats(file, path, t->ndim, dims, ck->params + t->offset, err) < 0) return -1;
    }
    if (ck->has_state && write_state(file, ck, num_params, err) < 0) return -1;
    return 0;
}

/* The folder holding path, for fsync after the rename. */
static void parent_dir(const char *path, char *out, size_t len) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, len, ".");
    else if (slash == path)
        snprintf(out, len, "/");
    else
        snprintf(out, len, "%.*s", (int)(slash - path), path);
}

static int fsync_path(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    /* some file systems cannot fsync a folder; the rename has still happened */
    if (rc < 0 && (flags & O_DIRECTORY) && (errno == EINVAL || errno == ENOTSUP)) rc = 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* Writes the bytes of the file to path and fsyncs it. */
static int write_image(const char *path, const void *buf, size_t n, CrnnError *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) return crnn_fail(err, "cannot create %s: %s", path, strerror(errno));
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int saved = w < 0 ? errno : ENOSPC;
            close(fd);
            return crnn_fail(err, "cannot write %s: %s; check the free space of its disk", path,
                             strerror(saved));
        }
        p += w;
        n -= (size_t)w;
    }
    int rc = fsync(fd);
    int saved = errno;
    if (close(fd) < 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc < 0)
        return crnn_fail(err, "cannot write %s: %s; check the free space of its disk", path,
                         strerror(saved));
    return 0;
}

int checkpoint_write(const char *path, const Checkpoint *ck, CrnnError *err) {
    ParamTensor tensors[CRNN_MAX_TENSORS];
    size_t num_params = 0;
    const ModelConfig *m = &ck->model;
    int num_tensors = 0;
    if (model_gates(m->model_type) && m->V >= 1 && m->D >= 0 && m->H >= 1 && m->L >= 1 &&
        m->L <= CRNN_MAX_LAYERS)
        num_tensors = model_layout(m, tensors, &num_params);
    if (check_for_write(ck, num_params, err) < 0)
        return crnn_fail_context(err, "cannot write the checkpoint %s", path);

    size_t plen = strlen(path);
    char *tmp = crnn_malloc(plen + 5, err);
    if (!tmp) return -1;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);

    /* creating it by hand first gives a message with the reason (no folder, no permission) */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) {
        crnn_fail(err, "cannot write the checkpoint %s: cannot create %s: %s; check that the folder exists and is writable",
                  path, tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    close(fd);

    int rc = -1;
    /* The file is made in memory (the core driver, no backing store) and written out by
     * write_image: HDF5 1.10 crashes at exit after an H5Fclose that failed to write (a full
     * disk), so HDF5 never writes to the disk itself. H5F_CLOSE_SEMI: H5Fclose fails (rather
     * than quietly keeping the file open) if an object were left open. */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), file = H5I_INVALID_HID;
    if (fapl >= 0 && H5Pset_fclose_degree(fapl, H5F_CLOSE_SEMI) >= 0 &&
        H5Pset_fapl_core(fapl, (size_t)1 << 20, 0) >= 0)
        file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    CLOSE_ID(fapl, H5Pclose);
    void *image = NULL;
    ssize_t image_size = -1;
    if (file < 0) {
        crnn_fail(err, "cannot create the HDF5 file");
    } else {
        rc = write_contents(file, ck, tensors, num_tensors, num_params, err);
        if (rc == 0 && H5Fflush(file, H5F_SCOPE_GLOBAL) < 0)
            rc = crnn_fail(err, "cannot flush the HDF5 file");
        if (rc == 0) {
            image_size = H5Fget_file_image(file, NULL, 0);
            image = image_size > 0 ? crnn_malloc((size_t)image_size, err) : NULL;
            if (!image || H5Fget_file_image(file, image, (size_t)image_size) != image_size)
                rc = image ? crnn_fail(err, "cannot make the HDF5 file image") : -1;
        }
        if (H5Fclose(file) < 0 && rc == 0) rc = crnn_fail(err, "cannot close the HDF5 file");
    }
    if (rc == 0) rc = write_image(tmp, image, (size_t)image_size, err);
    free(image);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = crnn_fail(err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc < 0) {
        unlink(tmp);
        crnn_fail_context(err, "cannot write the checkpoint %s", path);
        free(tmp);
        return -1;
    }
    free(tmp);
    char dir[4096];
    parent_dir(path, dir, sizeof dir);
    if (fsync_path(dir, O_RDONLY | O_DIRECTORY) < 0)
        return crnn_fail(err, "wrote the checkpoint %s but cannot fsync its folder %s: %s", path,
                         dir, strerror(errno));
    return 0;
}

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
        crnn_fail(err, "%s has no attribute '%s'; the file is incomplete or not from crnn-train; " ADVICE_OTHER, objname, name);
        return H5I_INVALID_HID;
    }
    hid_t attr = e > 0 ? H5Aopen(obj, name, H5P_DEFAULT) : H5I_INVALID_HID;
    if (attr < 0) {
        crnn_fail(err, "cannot read the attribute %s of %s (corrupt?); " ADVICE_OTHER, name, objname);
        return H5I_INVALID_HID;
    }
    hid_t type = H5Aget_type(attr), space = H5Aget_space(attr);
    H5T_class_t c = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    hssize_t npoints = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    CLOSE_ID(type, H5Tclose);
    CLOSE_ID(space, H5Sclose);
    int ok = (c == cls || (cls == H5T_FLOAT && c == H5T_INTEGER)) && npoints == 1;
    if (!ok) {
        crnn_fail(err, "the attribute %s of %s must be one %s value, got %s%s; " ADVICE_OTHER, name, objname,
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
    if (rc < 0) crnn_fail(err, "cannot read the attribute %s of %s (corrupt?); " ADVICE_OTHER, name, objname);
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
        mtype = str_type();
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
    if (rc == -1) crnn_fail(err, "cannot read the attribute %s of %s (corrupt?); " ADVICE_OTHER, name, objname);
    return rc < 0 ? rc : 1;
}

/* Opens a dataset and checks its class and shape. want_dims[i] < 0 accepts any extent;
 * dims gets the actual shape. Returns the dataset or -1 with a message. */
static hid_t dset_open_checked(hid_t file, const char *path, H5T_class_t cls, int ndim,
                               const int64_t *want_dims, int64_t *dims, const char *why,
                               CrnnError *err) {
    int e = path_exists(file, path);
    if (e <= 0) {
        crnn_fail(err, "%s %s; the file is incomplete or not from crnn-train; " ADVICE_OTHER,
                  e < 0 ? "cannot look up" : "missing", path);
        return H5I_INVALID_HID;
    }
    hid_t dset = H5Dopen2(file, path, H5P_DEFAULT);
    if (dset < 0) {
        crnn_fail(err, "cannot open %s as a dataset (truncated or corrupt?); " ADVICE_OTHER, path);
        return H5I_INVALID_HID;
    }
    hid_t type = H5Dget_type(dset), space = H5Dget_space(dset);
    H5T_class_t c = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    hsize_t hd[H5S_MAX_RANK];
    int ok = 0;
    if (c != cls) {
        crnn_fail(err, "%s must hold %s values, got %s; " ADVICE_OTHER, path, class_name(cls),
                  c == H5T_NO_CLASS ? "an unreadable type" : class_name(c));
    } else if (nd < 0 || H5Sget_simple_extent_dims(space, hd, NULL) < 0) {
        crnn_fail(err, "cannot read the shape of %s (corrupt?); " ADVICE_OTHER, path);
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
            crnn_fail(err, "%s has shape %s, expected %s%s; " ADVICE_OTHER, path, g, w, why ? why : "");
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
        return crnn_fail(err, "cannot read %s (truncated or corrupt?); " ADVICE_OTHER, path);
    return 0;
}

static int check_finite(const float *x, size_t n, const char *path, CrnnError *err) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return crnn_fail(err, "%s holds a non-finite value (%g at element %zu): the run had diverged when this was written; " ADVICE_OTHER,
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
            crnn_fail(err, "not a crnn checkpoint (no 'format' attribute); give a checkpoint written by crnn-train");
        else
            crnn_fail(err, "not a crnn checkpoint (its 'format' attribute is '%.64s', expected '%s'); give a checkpoint written by crnn-train",
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
    if (version < 1) return crnn_fail(err, "invalid format_version %" PRId64 "; " ADVICE_OTHER, version);
    if (attr_read_str(file, "/", "model_type", &model_type, 1, err) < 0) return -1;
    if (!model_gates(model_type)) {
        crnn_fail(err, "unknown model_type '%.32s' (crnn knows lstm, gru and rnn); use a newer crnn or another checkpoint", model_type);
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
            return crnn_fail(err, "the attribute %s is %" PRId64 ", outside %" PRId64 "..%" PRId64 "; " ADVICE_OTHER,
                             sizes[i].name, v, sizes[i].min, sizes[i].max);
        *sizes[i].field = (int)v;
    }
    /* files made only for -init_from by other tools may leave these out; read_state
     * requires them */
    ck->model.dropout = 0;
    if (attr_read_f64(file, "/", "dropout", &ck->model.dropout, 0, err) < 0) return -1;
    if (!(ck->model.dropout >= 0 && ck->model.dropout < 1))
        return crnn_fail(err, "the attribute dropout is %g, outside [0, 1); " ADVICE_OTHER, ck->model.dropout);
    if (attr_read_i64(file, "/", "iteration", &ck->iteration, 0, err) < 0) return -1;
    if (ck->iteration < 0)
        return crnn_fail(err, "the attribute iteration is negative (%" PRId64 "); " ADVICE_OTHER, ck->iteration);
    if (attr_read_f64(file, "/", "epoch", &ck->epoch, 0, err) < 0) return -1;
    if (!(ck->epoch >= 0) || !isfinite(ck->epoch))
        return crnn_fail(err, "the attribute epoch is %g, expected a finite value >= 0; " ADVICE_OTHER, ck->epoch);
    /* optional: files before it, and other writers, have none (0: the time is not known) */
    ck->elapsed_seconds = 0;
    if (attr_read_f64(file, "/", "elapsed_seconds", &ck->elapsed_seconds, 0, err) < 0) return -1;
    if (!(ck->elapsed_seconds >= 0) || !isfinite(ck->elapsed_seconds))
        return crnn_fail(err, "the attribute elapsed_seconds is %g, expected a finite value >= 0; " ADVICE_OTHER,
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
        crnn_fail(r->err, "the /config attribute name '%.64s...' is too long; " ADVICE_OTHER, name);
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
        rc = crnn_fail(r->err, "the /config attribute %s is not an integer, a float or a string; " ADVICE_OTHER,
                       name);
    }
    if (rc < 0) return -1;
    ck->num_config++;
    return 0;
}

static int read_config(hid_t file, Checkpoint *ck, CrnnError *err) {
    int e = path_exists(file, "/config");
    if (e < 0) return crnn_fail(err, "cannot look up /config (corrupt?); " ADVICE_OTHER);
    if (e == 0) return 0; /* params-only files */
    hid_t g = H5Gopen2(file, "/config", H5P_DEFAULT);
    if (g < 0) return crnn_fail(err, "cannot open /config as a group (corrupt?); " ADVICE_OTHER);
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
        if (err->msg[0] == '\0') crnn_fail(err, "cannot read the attributes of /config (corrupt?); " ADVICE_OTHER);
        return -1;
    }
    return 0;
}

static int read_vocab(hid_t file, Checkpoint *ck, CrnnError *err) {
    int64_t any[1] = {-1}, n;
    int e = path_exists(file, "/vocab");
    if (e <= 0)
        return crnn_fail(err, "%s /vocab; the file is incomplete or not from crnn-train; " ADVICE_OTHER,
                         e < 0 ? "cannot look up" : "missing");
    hid_t g = H5Gopen2(file, "/vocab", H5P_DEFAULT);
    if (g < 0) return crnn_fail(err, "cannot open /vocab as a group (corrupt?); " ADVICE_OTHER);
    char *encoding = NULL;
    int have_enc = attr_read_str(g, "/vocab", "encoding", &encoding, 0, err);
    H5Gclose(g);
    if (have_enc < 0) return -1;
    int enc = -1; /* -1: not given, found from the tokens as for torch-rnn's JSON */
    if (have_enc) {
        if (strcmp(encoding, "utf-8") == 0) enc = VOCAB_UTF8;
        else if (strcmp(encoding, "bytes") == 0) enc = VOCAB_BYTES;
        else {
            crnn_fail(err, "the /vocab attribute encoding is '%.32s', expected 'utf-8' or 'bytes'; " ADVICE_OTHER,
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
        return crnn_fail(err, "vocab_size is %d but /vocab/idx_to_token holds %" PRId64 " tokens; " ADVICE_OTHER,
                         ck->model.V, n);
    }
    char **names = crnn_calloc((size_t)n, sizeof *names, err);
    uint32_t *tokens = crnn_calloc((size_t)n, sizeof *tokens, err);
    int rc = names && tokens ? read_strings(d, 0, (hsize_t)n, names, err) : -1;
    H5Dclose(d);
    if (rc == -1 && names && tokens)
        crnn_fail(err, "cannot read /vocab/idx_to_token (truncated or corrupt?); " ADVICE_OTHER);
    if (rc == 0) {
        if (enc < 0) { /* utf-8 unless some token only reads as a byte ("[200]") */
            enc = VOCAB_UTF8;
            for (int64_t i = 0; i < n; i++)
                if (vocab_parse_token_name(VOCAB_UTF8, names[i], &tokens[i]) < 0) enc = VOCAB_BYTES;
        }
        for (int64_t i = 0; i < n && rc == 0; i++)
            if (vocab_parse_token_name((VocabEncoding)enc, names[i], &tokens[i]) < 0)
                rc = crnn_fail(err, "row %" PRId64 " of /vocab/idx_to_token, '%.32s', is not a %s token; " ADVICE_OTHER,
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

static int read_state(hid_t file, Checkpoint *ck, CrnnError *err) {
    const ModelConfig *m = &ck->model;
    int e = path_exists(file, "/optim");
    if (e <= 0)
        return crnn_fail(err, "%s /optim: this file holds no training state (made for -init_from?); resume from a checkpoint written by crnn-train, or use -init_from",
                         e < 0 ? "cannot look up" : "missing");
    /* where training stood: optional in params-only files, required to resume */
    double dropout, epoch;
    int64_t iteration;
    if (attr_read_f64(file, "/", "dropout", &dropout, 1, err) < 0 ||
        attr_read_i64(file, "/", "iteration", &iteration, 1, err) < 0 ||
        attr_read_f64(file, "/", "epoch", &epoch, 1, err) < 0)
        return -1;
    hid_t g = H5Gopen2(file, "/optim", H5P_DEFAULT);
    if (g < 0) return crnn_fail(err, "cannot open /optim as a group (corrupt?); " ADVICE_OTHER);
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
    if (ck->optim_step < 0) return crnn_fail(err, "the /optim attribute step is negative; " ADVICE_OTHER);
    if (!isfinite(ck->learning_rate) || ck->learning_rate < 0)
        return crnn_fail(err, "the /optim attribute learning_rate is %g; " ADVICE_OTHER, ck->learning_rate);

    int64_t flat[1] = {(int64_t)ck->num_params};
    const char *flat_why = " (one value per parameter)";
    if (strcmp(ck->optim_name, "adam") == 0 &&
        read_float_array(file, "/optim/m", 1, flat, flat_why, &ck->optim_m, err) < 0)
        return -1;
    if (read_float_array(file, "/optim/v", 1, flat, flat_why, &ck->optim_v, err) < 0) return -1;

    int64_t n;
    void *p;
    if (read_1d(file, "/state/rng", H5T_INTEGER, H5T_NATIVE_UINT64, sizeof(uint64_t), &p, &n,
                err) < 0)
        return -1;
    ck->rng = p;
    if (n > INT_MAX) return crnn_fail(err, "/state/rng is too long (%" PRId64 "); " ADVICE_OTHER, n);
    ck->num_rng = (int)n;

    e = path_exists(file, "/state/data");
    if (e <= 0)
        return crnn_fail(err, "%s /state/data; the file is incomplete; " ADVICE_OTHER,
                         e < 0 ? "cannot look up" : "missing");
    g = H5Gopen2(file, "/state/data", H5P_DEFAULT);
    if (g < 0) return crnn_fail(err, "cannot open /state/data as a group (corrupt?); " ADVICE_OTHER);
    int64_t streams = 0;
    if (attr_read_i64(g, "/state/data", "streams", &streams, 1, err) < 0 ||
        attr_read_i64(g, "/state/data", "batch_index", &ck->batch_index, 1, err) < 0 ||
        attr_read_i64(g, "/state/data", "epoch_index", &ck->epoch_index, 1, err) < 0)
        rc = -1;
    H5Gclose(g);
    if (rc < 0) return -1;
    if (streams < 0 || streams > INT_MAX)
        return crnn_fail(err, "the /state/data attribute streams is %" PRId64 "; " ADVICE_OTHER, streams);
    if (ck->batch_index < 0 || ck->epoch_index < 0)
        return crnn_fail(err, "the /state/data attributes batch_index and epoch_index must be >= 0; " ADVICE_OTHER);
    ck->streams = (int)streams;

    /* [L, streams, H], one dataset [streams, H] per layer */
    int has_c = strcmp(m->model_type, "lstm") == 0;
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

    int64_t any[1] = {-1}, nv;
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
    ck->has_state = 1;
    return 0;
}

int checkpoint_read(const char *path, Checkpoint *ck, int want_state, CrnnError *err) {
    memset(ck, 0, sizeof *ck);
    CrnnError local;
    if (!err) err = &local;
    struct stat st;
    if (stat(path, &st) != 0)
        return crnn_fail(err, "cannot open the checkpoint %s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return crnn_fail(err, "cannot open the checkpoint %s: it is a folder", path);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        if (access(path, R_OK) != 0)
            return crnn_fail(err, "cannot open the checkpoint %s: %s", path, strerror(errno));
        return crnn_fail(err, "%s is not a readable HDF5 file (truncated or corrupt?); " ADVICE_OTHER,
                         path);
    }
    int rc = -1;
    if (read_root(file, ck, err) == 0 && read_config(file, ck, err) == 0 &&
        read_vocab(file, ck, err) == 0 && read_params(file, ck, err) == 0 &&
        (!want_state || read_state(file, ck, err) == 0))
        rc = 0;
    if (H5Fclose(file) < 0 && rc == 0)
        rc = crnn_fail(err, "cannot close the file (corrupt?); " ADVICE_OTHER);
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
