/* Writing the HDF5 checkpoint (docs/FORMATS.md section 4). The file is made in memory and written
 * through atomic_file (a new `path.tmp`, fsync, rename onto `path`, fsync of the folder): a
 * crash leaves either the old file or the new one under the name, never a half-written one.
 * Every HDF5 call is checked; each helper closes what it opened on every path. */
#include "crnn/atomic_file.h"
#include "crnn/checkpoint.h"
#include "crnn/cell.h"
#include "crnn/version.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "checkpoint_internal.h"
#include "h5util.h"

/* ---------------------------------------------------------------------------------------- */
/* Writing */

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
    hid_t t = checkpoint_str_type();
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
        t = checkpoint_str_type();
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
    const CellSpec *cell = cell_find(m->model_type);
    if (!cell) return crnn_fail(err, "unknown model_type '%s'", m->model_type);
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
        (ck->streams > 0 && cell->has_cell_state && !ck->hidden_c))
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

/* The core driver's memory comes from these callbacks, so that the finished image can be
 * written out from the driver's own buffer: at H5Fclose the buffer is kept (in *udata) rather
 * than freed. A checkpoint is then held in memory once, not twice (at 3x1024, 300 MB once). */
static void *image_malloc(size_t size, H5FD_file_image_op_t op, void *udata) {
    (void)op, (void)udata;
    return malloc(size);
}
static void *image_memcpy(void *dst, const void *src, size_t size, H5FD_file_image_op_t op, void *udata) {
    (void)op, (void)udata;
    return memcpy(dst, src, size);
}
static void *image_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata) {
    (void)op, (void)udata;
    return realloc(ptr, size);
}
static herr_t image_free(void *ptr, H5FD_file_image_op_t op, void *udata) {
    void **kept = udata;
    if (op == H5FD_FILE_IMAGE_OP_FILE_CLOSE && !*kept) *kept = ptr;
    else free(ptr);
    return 0;
}
static void *image_udata_copy(void *udata) { return udata; }
static herr_t image_udata_free(void *udata) {
    (void)udata;
    return 0;
}

int checkpoint_write(const char *path, const Checkpoint *ck, CrnnError *err) {
    ParamTensor tensors[CRNN_MAX_TENSORS];
    size_t num_params = 0;
    const ModelConfig *m = &ck->model;
    int num_tensors = 0;
    if (cell_find(m->model_type) && m->V >= 1 && m->D >= 0 && m->H >= 1 && m->L >= 1 &&
        m->L <= CRNN_MAX_LAYERS)
        num_tensors = model_layout(m, tensors, &num_params);
    if (check_for_write(ck, num_params, err) < 0)
        return crnn_fail_context(err, "cannot write the checkpoint %s", path);

    /* the temporary file first: a message with the reason (no folder, no permission) */
    AtomicFile af;
    if (atomic_file_create(&af, path, err)) return crnn_fail_context(err, "cannot write the checkpoint %s", path);

    int rc = -1;
    /* The file is made in memory (the core driver, no backing store) and written out through
     * af: HDF5 1.10 crashes at exit after an H5Fclose that failed to write (a full disk), so
     * HDF5 never writes to the disk itself. H5F_CLOSE_SEMI: H5Fclose fails (rather than
     * quietly keeping the file open) if an object were left open. */
    void *image = NULL; /* the driver's buffer, kept at H5Fclose by image_free */
    H5FD_file_image_callbacks_t callbacks = {image_malloc,     image_memcpy,     image_realloc, image_free,
                                             image_udata_copy, image_udata_free, &image};
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), file = H5I_INVALID_HID;
    if (fapl >= 0 && H5Pset_fclose_degree(fapl, H5F_CLOSE_SEMI) >= 0 &&
        H5Pset_fapl_core(fapl, (size_t)1 << 20, 0) >= 0 && H5Pset_file_image_callbacks(fapl, &callbacks) >= 0 &&
        H5Pset_meta_block_size(fapl, 0) >= 0 && H5Pset_small_data_block_size(fapl, 0) >= 0)
        file = H5Fcreate(af.tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    CLOSE_ID(fapl, H5Pclose);
    ssize_t image_size = -1;
    if (file < 0) {
        crnn_fail(err, "cannot create the HDF5 file");
    } else {
        rc = write_contents(file, ck, tensors, num_tensors, num_params, err);
        if (rc == 0 && H5Fflush(file, H5F_SCOPE_GLOBAL) < 0)
            rc = crnn_fail(err, "cannot flush the HDF5 file");
        if (rc == 0 && (image_size = H5Fget_file_image(file, NULL, 0)) <= 0)
            rc = crnn_fail(err, "cannot make the HDF5 file image");
        if (H5Fclose(file) < 0 && rc == 0) rc = crnn_fail(err, "cannot close the HDF5 file");
        if (rc == 0 && !image) rc = crnn_fail(err, "the HDF5 library kept no file image");
    }
    if (rc == 0) rc = atomic_file_write(&af, image, (size_t)image_size, err);
    free(image);
    if (rc < 0) atomic_file_abandon(&af);
    else rc = atomic_file_commit(&af, err);
    if (rc < 0) return crnn_fail_context(err, "cannot write the checkpoint %s", path);
    return 0;
}
