/* The checkpoint module: full round trips (lstm/gru/rnn, utf-8 and bytes vocabularies, empty
 * histories), params-only files, every validation error on purpose-broken files (each message
 * names the file), failed writes that leave the old file alone, and a writer SIGKILLed at
 * varied moments that never leaves a broken file under the checkpoint's name.
 *
 *   test_checkpoint                 run every test
 *   test_checkpoint --write PATH    write the round-trip checkpoint to PATH (for the h5py test)
 *   test_checkpoint --read PATH [1] read PATH (with the state when 1), print a summary */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crnn/checkpoint.h"

#include "check.h"

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Identifiers of every kind the module opens: equal before and after a call means no leak. */
static const H5I_type_t id_types[] = {H5I_FILE, H5I_GROUP, H5I_DATATYPE, H5I_DATASPACE,
                                      H5I_DATASET, H5I_ATTR, H5I_GENPROP_LST};
typedef struct { hsize_t n[7]; } IdCounts;
static IdCounts id_counts(void) {
    IdCounts c;
    for (int i = 0; i < 7; i++) {
        c.n[i] = 0;
        H5Inmembers(id_types[i], &c.n[i]);
    }
    return c;
}
static void check_no_leak(IdCounts before, const char *where) {
    IdCounts after = id_counts();
    for (int i = 0; i < 7; i++)
        CHECK(after.n[i] == before.n[i], "HDF5 ids of type %d: %llu before, %llu after %s",
              (int)id_types[i], (unsigned long long)before.n[i],
              (unsigned long long)after.n[i], where);
}

/* ---------------------------------------------------------------------------------------- */
/* A checkpoint with every field set to known values */

static float pattern(size_t j, int64_t salt) {
    return (float)((double)((j * 7919 + (size_t)salt * 104729) % 20011) / 20011.0 - 0.5);
}

static void add_config(Checkpoint *ck, const char *name, ConfigType type, int64_t i, double d,
                       const char *s) {
    ConfigEntry *e = &ck->config[ck->num_config++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->type = type;
    e->i = i;
    e->d = d;
    if (type == CONFIG_STRING) e->s = strdup(s);
}

/* model_type lstm/gru/rnn; enc selects the vocabulary; streams P*B; with_state 0 gives a
 * params-only checkpoint. */
static void make_checkpoint(Checkpoint *ck, const char *model_type, VocabEncoding enc, int D,
                            int H, int L, int streams, int with_state, int64_t iteration,
                            int64_t num_train, int64_t num_val, const char *optim) {
    memset(ck, 0, sizeof *ck);
    static const uint32_t utf8_tokens[] = {'a', 'b', '\n', ' ', 0, 0xE9, 0x6F22, 0x1F600, '[',
                                           ']', '0', '"', '\\', 0x7F};
    static const uint32_t byte_tokens[] = {'x', 0, 200, 255, '[', '1', 128, 127, '\n', 0xE9};
    const uint32_t *tokens = enc == VOCAB_UTF8 ? utf8_tokens : byte_tokens;
    int V = enc == VOCAB_UTF8 ? (int)CRNN_ARRAY_LEN(utf8_tokens) : (int)CRNN_ARRAY_LEN(byte_tokens);
    CrnnError err;
    if (vocab_from_tokens(&ck->vocab, enc, tokens, V, &err) < 0) {
        fprintf(stderr, "vocab_from_tokens: %s\n", err.msg);
        exit(2);
    }
    snprintf(ck->model.model_type, sizeof ck->model.model_type, "%s", model_type);
    ck->model.V = V;
    ck->model.D = D;
    ck->model.H = H;
    ck->model.L = L;
    ck->model.dropout = 0.25;
    ck->iteration = iteration;
    ck->epoch = 3.0 + 1.0 / 3.0;

    ck->config = calloc(64, sizeof *ck->config);
    add_config(ck, "input_h5", CONFIG_STRING, 0, 0, "data/tiny shakespeare.h5");
    add_config(ck, "batch_size", CONFIG_INT, 50, 0, NULL);
    add_config(ck, "learning_rate", CONFIG_REAL, 0, 2e-3, NULL);
    add_config(ck, "model_type", CONFIG_STRING, 0, 0, model_type);
    add_config(ck, "gpu", CONFIG_INT, -1, 0, NULL);
    add_config(ck, "start_text", CONFIG_STRING, 0, 0, "");
    add_config(ck, "max_epochs", CONFIG_REAL, 0, 0.5, NULL);
    add_config(ck, "checkpoint_name", CONFIG_STRING, 0, 0, "cv/caf\xc3\xa9 \xe6\xbc\xa2");
    for (int i = 0; i < 24; i++) { /* enough for HDF5's dense attribute storage */
        char name[32];
        snprintf(name, sizeof name, "zz_flag_%02d", 23 - i);
        add_config(ck, name, CONFIG_INT, INT64_MAX - i, 0, NULL);
    }

    ParamTensor t[CRNN_MAX_TENSORS];
    model_layout(&ck->model, t, &ck->num_params);
    ck->params = malloc(ck->num_params * sizeof *ck->params);
    for (size_t j = 0; j < ck->num_params; j++) ck->params[j] = pattern(j, iteration);
    if (!with_state) return;

    ck->has_state = 1;
    snprintf(ck->optim_name, sizeof ck->optim_name, "%s", optim);
    ck->optim_step = iteration;
    ck->learning_rate = 1e-3 * 0.5;
    if (strcmp(optim, "adam") == 0) {
        ck->optim_m = malloc(ck->num_params * sizeof *ck->optim_m);
        for (size_t j = 0; j < ck->num_params; j++) ck->optim_m[j] = pattern(j, iteration + 1);
    }
    ck->optim_v = malloc(ck->num_params * sizeof *ck->optim_v);
    for (size_t j = 0; j < ck->num_params; j++) ck->optim_v[j] = fabsf(pattern(j, iteration + 2));
    ck->num_rng = 5;
    ck->rng = malloc(5 * sizeof *ck->rng);
    for (int i = 0; i < 5; i++) ck->rng[i] = UINT64_MAX - (uint64_t)i * 0x123456789ULL;
    ck->streams = streams;
    ck->batch_index = 17;
    ck->epoch_index = 3;
    size_t hn = (size_t)L * (size_t)streams * (size_t)H;
    ck->hidden_h = malloc((hn ? hn : 1) * sizeof *ck->hidden_h);
    for (size_t j = 0; j < hn; j++) ck->hidden_h[j] = pattern(j, 5);
    if (strcmp(model_type, "lstm") == 0) {
        ck->hidden_c = malloc((hn ? hn : 1) * sizeof *ck->hidden_c);
        for (size_t j = 0; j < hn; j++) ck->hidden_c[j] = pattern(j, 6) * 3;
    }
    ck->num_train_loss = num_train;
    ck->train_loss = malloc((size_t)(num_train ? num_train : 1) * sizeof *ck->train_loss);
    for (int64_t j = 0; j < num_train; j++) ck->train_loss[j] = 4.0f - (float)j * 0.01f;
    ck->num_val = num_val;
    ck->val_loss = malloc((size_t)(num_val ? num_val : 1) * sizeof *ck->val_loss);
    ck->val_iteration = malloc((size_t)(num_val ? num_val : 1) * sizeof *ck->val_iteration);
    for (int64_t j = 0; j < num_val; j++) {
        ck->val_loss[j] = 3.5f - (float)j * 0.1f;
        ck->val_iteration[j] = (j + 1) * 1000;
    }
}

static int floats_equal(const float *a, const float *b, size_t n) {
    if (!a || !b) return a == b || n == 0;
    return memcmp(a, b, n * sizeof *a) == 0;
}

/* Every field; want_state 0 compares what such a read gives. */
static void check_equal(const Checkpoint *a, const Checkpoint *b, int want_state,
                        const char *what) {
    CHECK(strcmp(a->model.model_type, b->model.model_type) == 0 && a->model.V == b->model.V &&
              a->model.D == b->model.D && a->model.H == b->model.H && a->model.L == b->model.L &&
              a->model.dropout == b->model.dropout,
          "%s: model config differs", what);
    CHECK(a->iteration == b->iteration && a->epoch == b->epoch, "%s: iteration/epoch", what);
    CHECK(a->num_config == b->num_config, "%s: %d vs %d config entries", what, a->num_config,
          b->num_config);
    for (int i = 0; i < a->num_config && i < b->num_config; i++) {
        const ConfigEntry *x = &a->config[i], *y = &b->config[i];
        int same = strcmp(x->name, y->name) == 0 && x->type == y->type;
        if (same && x->type == CONFIG_INT) same = x->i == y->i;
        if (same && x->type == CONFIG_REAL) same = x->d == y->d;
        if (same && x->type == CONFIG_STRING) same = strcmp(x->s, y->s) == 0;
        CHECK(same, "%s: config entry %d (%s vs %s)", what, i, x->name, y->name);
    }
    const ConfigEntry *e = checkpoint_config(b, "batch_size");
    CHECK(!a->num_config || (e && e->type == CONFIG_INT && e->i == 50), "%s: lookup", what);
    CHECK(checkpoint_config(b, "no_such_flag") == NULL, "%s: lookup of a missing flag", what);
    CHECK(vocab_equal(&a->vocab, &b->vocab), "%s: vocabulary differs", what);
    CHECK(b->vocab.lookup != NULL && vocab_index(&b->vocab, a->vocab.tokens[0]) == 0,
          "%s: vocabulary lookup", what);
    CHECK(a->num_params == b->num_params && floats_equal(a->params, b->params, a->num_params),
          "%s: parameters differ", what);
    if (!want_state) {
        CHECK(b->has_state == 0 && !b->optim_v && !b->optim_m && !b->hidden_h && !b->rng &&
                  !b->train_loss,
              "%s: state read without want_state", what);
        return;
    }
    CHECK(b->has_state == 1, "%s: has_state", what);
    CHECK(strcmp(a->optim_name, b->optim_name) == 0 && a->optim_step == b->optim_step &&
              a->learning_rate == b->learning_rate,
          "%s: optimizer attributes", what);
    CHECK(floats_equal(a->optim_m, b->optim_m, a->num_params) &&
              floats_equal(a->optim_v, b->optim_v, a->num_params),
          "%s: optimizer moments", what);
    CHECK(a->num_rng == b->num_rng &&
              (a->num_rng == 0 || memcmp(a->rng, b->rng, (size_t)a->num_rng * 8) == 0),
          "%s: rng", what);
    CHECK(a->streams == b->streams && a->batch_index == b->batch_index &&
              a->epoch_index == b->epoch_index,
          "%s: data position", what);
    size_t hn = (size_t)a->model.L * (size_t)a->streams * (size_t)a->model.H;
    CHECK(floats_equal(a->hidden_h, b->hidden_h, hn), "%s: hidden h", what);
    CHECK((a->hidden_c == NULL) == (b->hidden_c == NULL) &&
              (!a->hidden_c || floats_equal(a->hidden_c, b->hidden_c, hn)),
          "%s: hidden c", what);
    CHECK(a->num_train_loss == b->num_train_loss &&
              floats_equal(a->train_loss, b->train_loss, (size_t)a->num_train_loss),
          "%s: train loss history", what);
    CHECK(a->num_val == b->num_val && floats_equal(a->val_loss, b->val_loss, (size_t)a->num_val) &&
              (a->num_val == 0 ||
               memcmp(a->val_iteration, b->val_iteration, (size_t)a->num_val * 8) == 0),
          "%s: validation history", what);
}

static void round_trip(const Checkpoint *ck, const char *name) {
    const char *path = tmp_path(name);
    CrnnError err = {.msg = ""};
    IdCounts ids = id_counts();
    CHECK(checkpoint_write(path, ck, &err) == 0, "write %s: %s", name, err.msg);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(!file_exists(tmp), "%s left behind", tmp);
    for (int want = 0; want < 1 + ck->has_state; want++) {
        Checkpoint back;
        int rc = checkpoint_read(path, &back, want, &err);
        CHECK(rc == 0, "read %s: %s", name, err.msg);
        if (rc == 0) check_equal(ck, &back, want, name);
        checkpoint_free(&back);
    }
    check_no_leak(ids, name);
}

static void test_round_trips(void) {
    Checkpoint ck;
    make_checkpoint(&ck, "lstm", VOCAB_UTF8, 8, 16, 3, 6, 1, 1234, 1234, 3, "adam");
    round_trip(&ck, "lstm.h5");
    checkpoint_free(&ck);
    make_checkpoint(&ck, "gru", VOCAB_BYTES, 5, 7, 2, 4, 1, 20, 20, 1, "rmsprop");
    round_trip(&ck, "gru.h5");
    checkpoint_free(&ck);
    /* empty histories, no streams, one layer */
    make_checkpoint(&ck, "rnn", VOCAB_UTF8, 3, 4, 1, 0, 1, 0, 0, 0, "adam");
    ck.num_rng = 0;
    round_trip(&ck, "rnn.h5");
    checkpoint_free(&ck);
    /* params-only, no config */
    make_checkpoint(&ck, "lstm", VOCAB_BYTES, 4, 6, 2, 0, 0, 7, 0, 0, "adam");
    for (int i = 0; i < ck.num_config; i++) free(ck.config[i].s);
    ck.num_config = 0;
    round_trip(&ck, "params_only.h5");
    CrnnError err = {.msg = ""};
    Checkpoint back;
    const char *path = tmp_path("params_only.h5");
    CHECK(checkpoint_read(path, &back, 1, &err) < 0 && strstr(err.msg, path) &&
              strstr(err.msg, "no training state"),
          "params-only with want_state: %s", err.msg);
    checkpoint_free(&ck);
}

/* A params-only file as another tool writes it: no /config, no dropout/iteration/epoch,
 * float64 parameters, ASCII variable-length and fixed-length strings, int32 sizes, no encoding
 * attribute. Runs first: HDF5 1.10 converts ASCII to UTF-8 variable-length strings only once
 * a UTF-8 conversion is cached, which would hide a reader that relies on it. */
static void test_foreign_params_only(void) {
    Checkpoint ck;
    make_checkpoint(&ck, "lstm", VOCAB_BYTES, 4, 6, 2, 0, 0, 0, 0, 0, "adam");
    const char *path = tmp_path("foreign.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t s = H5Screate(H5S_SCALAR), str = H5Tcopy(H5T_C_S1), vstr = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, 16);
    H5Tset_size(vstr, H5T_VARIABLE); /* ASCII, h5py's string_dtype('ascii') */
    const char *format = "crnn-checkpoint", mt[16] = "lstm";
    hid_t a = H5Acreate2(f, "format", vstr, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, vstr, &format);
    H5Aclose(a);
    a = H5Acreate2(f, "model_type", str, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, str, mt);
    H5Aclose(a);
    const char *names[] = {"format_version", "vocab_size", "wordvec_size", "rnn_size",
                           "num_layers"};
    int32_t vals[] = {1, ck.model.V, ck.model.D, ck.model.H, ck.model.L};
    for (int i = 0; i < 5; i++) { /* int32, not int64: still integers */
        a = H5Acreate2(f, names[i], H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT32, &vals[i]);
        H5Aclose(a);
    }
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hsize_t vdim[1] = {(hsize_t)ck.model.V};
    char *rows = calloc((size_t)ck.model.V, 16);
    for (int i = 0; i < ck.model.V; i++) vocab_token_name(&ck.vocab, i, rows + 16 * i);
    hid_t vs = H5Screate_simple(1, vdim, NULL);
    hid_t d = H5Dcreate2(f, "/vocab/idx_to_token", str, vs, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, str, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows);
    H5Dclose(d);
    H5Sclose(vs);
    free(rows);
    ParamTensor t[CRNN_MAX_TENSORS];
    size_t n;
    int nt = model_layout(&ck.model, t, &n);
    for (int i = 0; i < nt; i++) {
        hsize_t dims[2] = {(hsize_t)t[i].dims[0], (hsize_t)t[i].dims[1]};
        double *x = malloc(t[i].size * sizeof *x);
        for (size_t j = 0; j < t[i].size; j++) x[j] = ck.params[t[i].offset + j];
        hid_t sp = H5Screate_simple(t[i].ndim, dims, NULL);
        char p[64];
        snprintf(p, sizeof p, "/%.*s", (int)sizeof t[i].name, t[i].name);
        d = H5Dcreate2(f, p, H5T_IEEE_F64LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
        H5Dclose(d);
        H5Sclose(sp);
        free(x);
    }
    H5Pclose(lcpl);
    H5Tclose(vstr);
    H5Tclose(str);
    H5Sclose(s);
    H5Fclose(f);

    for (int i = 0; i < ck.num_config; i++) free(ck.config[i].s);
    ck.num_config = 0;
    ck.model.dropout = 0;
    ck.epoch = 0;
    Checkpoint back;
    CrnnError err = {.msg = ""};
    IdCounts ids = id_counts();
    int rc = checkpoint_read(path, &back, 0, &err);
    CHECK(rc == 0, "foreign params-only file: %s", err.msg);
    if (rc == 0) check_equal(&ck, &back, 0, "foreign params-only file");
    checkpoint_free(&back);
    rc = checkpoint_read(path, &back, 1, &err);
    CHECK(rc < 0 && strstr(err.msg, path), "foreign with want_state: %s", err.msg);
    check_no_leak(ids, "foreign params-only file");
    checkpoint_free(&ck);
}

/* ---------------------------------------------------------------------------------------- */
/* Broken files */

static void copy_file(const char *src, const char *dst, long limit) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    char buf[65536];
    long total = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        if (limit >= 0 && total + (long)n > limit) n = (size_t)(limit - total);
        fwrite(buf, 1, n, out);
        total += (long)n;
        if (limit >= 0 && total >= limit) break;
    }
    fclose(in);
    fclose(out);
}

typedef enum {
    SET_STR, SET_I64, SET_F64, DELETE_ATTR, DELETE_LINK, REPLACE_FLOAT, REPLACE_INT, PUT_NAN
} ModKind;

typedef struct Mod {
    ModKind kind;
    const char *obj, *name; /* object path; attribute name (attributes) */
    const char *s;
    int64_t i;
    int ndim;
    hsize_t dims[2];
} Mod;

/* Applies one change to a copy of a good file with the HDF5 API. */
static void apply(const char *path, const Mod *m) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "cannot open %s to modify\n", path);
        exit(2);
    }
    hid_t s = H5Screate(H5S_SCALAR), a;
    if (m->kind == SET_STR || m->kind == SET_I64 || m->kind == SET_F64 || m->kind == DELETE_ATTR) {
        hid_t o = H5Oopen(f, m->obj, H5P_DEFAULT);
        if (H5Aexists(o, m->name) > 0) H5Adelete(o, m->name);
        if (m->kind == SET_STR) {
            hid_t t = H5Tcopy(H5T_C_S1);
            H5Tset_size(t, H5T_VARIABLE);
            a = H5Acreate2(o, m->name, t, s, H5P_DEFAULT, H5P_DEFAULT);
            H5Awrite(a, t, &m->s);
            H5Aclose(a);
            H5Tclose(t);
        } else if (m->kind == SET_I64) {
            a = H5Acreate2(o, m->name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
            H5Awrite(a, H5T_NATIVE_INT64, &m->i);
            H5Aclose(a);
        } else if (m->kind == SET_F64) {
            double d = (double)m->i;
            a = H5Acreate2(o, m->name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT);
            H5Awrite(a, H5T_NATIVE_DOUBLE, &d);
            H5Aclose(a);
        }
        H5Oclose(o);
    } else if (m->kind == DELETE_LINK) {
        H5Ldelete(f, m->obj, H5P_DEFAULT);
    } else if (m->kind == REPLACE_FLOAT || m->kind == REPLACE_INT) {
        H5Ldelete(f, m->obj, H5P_DEFAULT);
        hid_t sp = H5Screate_simple(m->ndim, m->dims, NULL);
        hid_t d = H5Dcreate2(f, m->obj, m->kind == REPLACE_FLOAT ? H5T_IEEE_F32LE : H5T_STD_I64LE,
                             sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t n = m->dims[0] * (m->ndim == 2 ? m->dims[1] : 1);
        double *zero = calloc(n + 1, sizeof *zero);
        H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, zero);
        free(zero);
        H5Dclose(d);
        H5Sclose(sp);
    } else if (m->kind == PUT_NAN) {
        hid_t d = H5Dopen2(f, m->obj, H5P_DEFAULT);
        hid_t sp = H5Dget_space(d);
        hssize_t n = H5Sget_simple_extent_npoints(sp);
        float *x = malloc((size_t)n * sizeof *x);
        H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
        x[m->i] = m->s ? INFINITY : NAN;
        H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
        free(x);
        H5Sclose(sp);
        H5Dclose(d);
    }
    H5Sclose(s);
    H5Fclose(f);
}

/* Reading must fail with a message that names the file and holds every fragment. */
static void expect_read_error(const char *path, int want_state, const char **frags, int nfrags,
                              const char *what) {
    Checkpoint ck;
    CrnnError err = {.msg = ""};
    IdCounts ids = id_counts();
    int rc = checkpoint_read(path, &ck, want_state, &err);
    CHECK(rc < 0, "%s: reading %s should fail", what, path);
    CHECK(strstr(err.msg, path) != NULL, "%s: the file is not named: %s", what, err.msg);
    for (int i = 0; i < nfrags; i++)
        CHECK(strstr(err.msg, frags[i]) != NULL, "%s: '%s' not in: %s", what, frags[i], err.msg);
    CHECK(ck.params == NULL && ck.config == NULL && ck.vocab.tokens == NULL &&
              ck.optim_v == NULL && ck.hidden_h == NULL,
          "%s: memory left in the checkpoint after an error", what);
    check_no_leak(ids, what);
    fprintf(stderr, "  ok, %s: %s\n", what, err.msg);
}

static void test_validation(void) {
    Checkpoint ck;
    make_checkpoint(&ck, "lstm", VOCAB_UTF8, 8, 16, 2, 6, 1, 100, 100, 2, "adam");
    const char *good = tmp_path("good.h5");
    CrnnError err = {.msg = ""};
    CHECK(checkpoint_write(good, &ck, &err) == 0, "%s", err.msg);
    int V = ck.model.V, H = ck.model.H;
    size_t np = ck.num_params;
    checkpoint_free(&ck);

    struct {
        Mod mod;
        int want_state;
        const char *frags[3];
    } cases[] = {
        {{SET_STR, "/", "format", "hdf5-model", 0, 0, {0}}, 0, {"not a crnn checkpoint", "hdf5-model"}},
        {{DELETE_ATTR, "/", "format", NULL, 0, 0, {0}}, 0, {"not a crnn checkpoint"}},
        {{SET_I64, "/", "format", NULL, 1, 0, {0}}, 0, {"not a crnn checkpoint"}},
        {{SET_I64, "/", "format_version", NULL, 2, 0, {0}}, 0, {"format_version 2", "newer"}},
        {{DELETE_ATTR, "/", "format_version", NULL, 0, 0, {0}}, 0, {"format_version"}},
        {{SET_STR, "/", "model_type", "transformer", 0, 0, {0}}, 0, {"unknown model_type", "transformer"}},
        {{SET_I64, "/", "rnn_size", NULL, 17, 0, {0}}, 0, {"/params/rnn/0/W_x", "expected [8, 68]"}},
        {{SET_F64, "/", "rnn_size", NULL, 16, 0, {0}}, 0, {"rnn_size", "integer"}},
        {{SET_I64, "/", "num_layers", NULL, 0, 0, {0}}, 0, {"num_layers", "outside"}},
        {{SET_I64, "/", "vocab_size", NULL, 15, 0, {0}}, 0, {"vocab_size is 15", "holds 14 tokens"}},
        {{DELETE_ATTR, "/", "iteration", NULL, 0, 0, {0}}, 1, {"iteration"}},
        {{DELETE_LINK, "/params/decoder/b", NULL, NULL, 0, 0, {0}}, 0, {"missing /params/decoder/b"}},
        {{DELETE_LINK, "/params/rnn", NULL, NULL, 0, 0, {0}}, 0, {"missing /params/rnn/0/W_x"}},
        {{DELETE_LINK, "/vocab/idx_to_token", NULL, NULL, 0, 0, {0}}, 0, {"missing /vocab/idx_to_token"}},
        {{SET_STR, "/vocab", "encoding", "latin-1", 0, 0, {0}}, 0, {"encoding", "latin-1"}},
        {{REPLACE_FLOAT, "/params/rnn/1/W_h", NULL, NULL, 0, 2, {16, 63}}, 0,
         {"/params/rnn/1/W_h has shape [16, 63], expected [16, 64]"}},
        {{REPLACE_FLOAT, "/params/rnn/0/b_x", NULL, NULL, 0, 2, {64, 1}}, 0, {"/params/rnn/0/b_x", "expected [64]"}},
        {{REPLACE_INT, "/params/embedding", NULL, NULL, 0, 2, {14, 8}}, 0, {"/params/embedding", "floating point"}},
        {{PUT_NAN, "/params/rnn/1/b_x", NULL, NULL, 5, 0, {0}}, 0, {"/params/rnn/1/b_x", "non-finite", "element 5"}},
        {{PUT_NAN, "/params/decoder/W", NULL, "inf", 0, 0, {0}}, 0, {"/params/decoder/W", "non-finite"}},
        {{DELETE_LINK, "/optim/v", NULL, NULL, 0, 0, {0}}, 1, {"missing /optim/v"}},
        {{REPLACE_FLOAT, "/optim/m", NULL, NULL, 0, 1, {10}}, 1, {"/optim/m has shape [10]", "one value per parameter"}},
        {{SET_STR, "/optim", "name", "sgd", 0, 0, {0}}, 1, {"unknown optimizer", "sgd"}},
        {{DELETE_LINK, "/optim", NULL, NULL, 0, 0, {0}}, 1, {"no training state"}},
        {{PUT_NAN, "/optim/v", NULL, NULL, 3, 0, {0}}, 1, {"/optim/v", "non-finite"}},
        {{DELETE_ATTR, "/state/data", "streams", NULL, 0, 0, {0}}, 1, {"streams"}},
        {{SET_I64, "/state/data", "streams", NULL, 5, 0, {0}}, 1, {"/state/hidden/0/h has shape [6, 16], expected [5, 16]"}},
        {{DELETE_LINK, "/state/hidden/1/c", NULL, NULL, 0, 0, {0}}, 1, {"missing /state/hidden/1/c"}},
        {{REPLACE_FLOAT, "/state/rng", NULL, NULL, 0, 1, {4}}, 1, {"/state/rng", "integer"}},
        {{REPLACE_INT, "/history/val_iteration", NULL, NULL, 0, 1, {3}}, 1, {"/history/val_iteration has shape [3], expected [2]"}},
        {{DELETE_LINK, "/history/train_loss", NULL, NULL, 0, 0, {0}}, 1, {"missing /history/train_loss"}},
    };
    for (size_t c = 0; c < CRNN_ARRAY_LEN(cases); c++) {
        char name[64];
        snprintf(name, sizeof name, "broken_%02zu.h5", c);
        const char *path = tmp_path(name);
        copy_file(good, path, -1);
        apply(path, &cases[c].mod);
        int nf = 0;
        while (nf < 3 && cases[c].frags[nf]) nf++;
        char what[128];
        snprintf(what, sizeof what, "case %zu (%s%s%s)", c, cases[c].mod.obj,
                 cases[c].mod.name ? " " : "", cases[c].mod.name ? cases[c].mod.name : "");
        expect_read_error(path, cases[c].want_state, cases[c].frags, nf, what);
        /* the state groups are not looked at without want_state */
        if (cases[c].want_state && strncmp(cases[c].mod.obj, "/params", 7) != 0 &&
            strcmp(cases[c].mod.obj, "/") != 0) {
            Checkpoint back;
            CHECK(checkpoint_read(path, &back, 0, &err) == 0, "%s without state: %s", what,
                  err.msg);
            checkpoint_free(&back);
        }
    }
    (void)V;
    (void)H;
    (void)np;

    /* truncated copies, garbage, missing, a folder */
    struct stat st;
    stat(good, &st);
    long cuts[] = {st.st_size / 2, st.st_size - 1, 512, 0};
    for (size_t c = 0; c < CRNN_ARRAY_LEN(cuts); c++) {
        const char *cut = tmp_path("truncated.h5");
        copy_file(good, cut, cuts[c]);
        expect_read_error(cut, 1,
                          (const char *[]){"is not a readable HDF5 file (truncated or corrupt?)",
                                           "use another checkpoint"}, 2, "truncated");
    }
    const char *garbage = tmp_path("garbage.h5");
    FILE *g = fopen(garbage, "wb");
    for (int i = 0; i < 100000; i++) fputc((i * 7919) & 255, g);
    fclose(g);
    expect_read_error(garbage, 0, (const char *[]){"is not a readable HDF5 file"}, 1, "garbage");
    /* the data in the middle of a good file overwritten: opens, but arrays do not read back */
    const char *holed = tmp_path("holed.h5");
    copy_file(good, holed, -1);
    FILE *h = fopen(holed, "r+b");
    fseek(h, 4096, SEEK_SET);
    for (int i = 0; i < 8192; i++) fputc(0xFF, h);
    fclose(h);
    {
        Checkpoint back;
        IdCounts ids = id_counts();
        int rc = checkpoint_read(holed, &back, 1, &err);
        /* depending on what the bytes hit, this fails (naming the file) or reads non-finite
         * parameters (also an error): it never crashes and never reads garbage silently */
        CHECK(rc < 0 && strstr(err.msg, holed), "overwritten middle: %s", rc ? err.msg : "read");
        if (rc == 0) checkpoint_free(&back);
        check_no_leak(ids, "overwritten middle");
        fprintf(stderr, "  ok, overwritten middle: %s\n", err.msg);
    }
    expect_read_error(tmp_path("absent.h5"), 0, (const char *[]){"No such file"}, 1, "absent");
    expect_read_error(tmpdir, 0, (const char *[]){"folder"}, 1, "folder");
}

/* ---------------------------------------------------------------------------------------- */
/* Writing: failures leave the old file, stale temporaries are replaced */

static void test_write_failures(void) {
    Checkpoint ck;
    make_checkpoint(&ck, "lstm", VOCAB_UTF8, 4, 8, 2, 2, 1, 10, 10, 1, "adam");
    CrnnError err = {.msg = ""};
    IdCounts ids = id_counts();

    const char *nodir = tmp_path("no/such/folder/ck.h5");
    CHECK(checkpoint_write(nodir, &ck, &err) < 0 && strstr(err.msg, nodir) &&
              strstr(err.msg, "No such file"),
          "no folder: %s", err.msg);
    fprintf(stderr, "  ok, no folder: %s\n", err.msg);

    const char *path = tmp_path("keep.h5");
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    /* a stale temporary (a crash) is replaced */
    FILE *f = fopen(tmp, "wb");
    fputs("half a checkpoint", f);
    fclose(f);
    CHECK(checkpoint_write(path, &ck, &err) == 0, "%s", err.msg);
    CHECK(!file_exists(tmp), "stale %s still there", tmp);

    /* a write that fails half-way (two config entries of one name) leaves the old file */
    Checkpoint bad;
    make_checkpoint(&bad, "lstm", VOCAB_UTF8, 4, 8, 2, 2, 1, 11, 11, 1, "adam");
    snprintf(bad.config[3].name, sizeof bad.config[3].name, "%s", bad.config[2].name);
    CHECK(checkpoint_write(path, &bad, &err) < 0 && strstr(err.msg, path) &&
              strstr(err.msg, bad.config[2].name),
          "duplicate config: %s", err.msg);
    fprintf(stderr, "  ok, failed write: %s\n", err.msg);
    CHECK(!file_exists(tmp), "%s left after a failed write", tmp);
    Checkpoint back;
    CHECK(checkpoint_read(path, &back, 1, &err) == 0 && back.iteration == 10,
          "old file after a failed write: %s", err.msg);
    checkpoint_free(&back);

    /* inconsistent arguments are refused before anything is written */
    bad.num_params--;
    CHECK(checkpoint_write(path, &bad, &err) < 0 && strstr(err.msg, "parameters"), "%s", err.msg);
    bad.num_params++;
    bad.model.V++;
    CHECK(checkpoint_write(path, &bad, &err) < 0 && strstr(err.msg, "vocab"), "%s", err.msg);
    bad.model.V--;
    snprintf(bad.model.model_type, sizeof bad.model.model_type, "xyz");
    CHECK(checkpoint_write(path, &bad, &err) < 0 && strstr(err.msg, "model_type"), "%s", err.msg);
    CHECK(checkpoint_read(path, &back, 1, &err) == 0 && back.iteration == 10, "%s", err.msg);
    checkpoint_free(&back);

    /* a folder that cannot be written */
    if (geteuid() != 0) {
        const char *ro = tmp_path("readonly");
        mkdir(ro, 0555);
        char p[600];
        snprintf(p, sizeof p, "%s/ck.h5", ro);
        CHECK(checkpoint_write(p, &ck, &err) < 0 && strstr(err.msg, "Permission denied"), "%s",
              err.msg);
    }
    check_no_leak(ids, "write failures");
    checkpoint_free(&bad);
    checkpoint_free(&ck);
}

/* ---------------------------------------------------------------------------------------- */
/* SIGKILL during writes */

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static void set_iteration(Checkpoint *ck, int64_t it) {
    ck->iteration = it;
    for (size_t j = 0; j < ck->num_params; j++) ck->params[j] = pattern(j, it);
    ck->optim_step = it;
}

static void test_kill_during_write(void) {
    /* ~3.4M parameters: params, m and v make a file of ~40 MB */
    Checkpoint ck;
    make_checkpoint(&ck, "lstm", VOCAB_UTF8, 128, 512, 2, 8, 1, 1, 1000, 10, "adam");
    const char *path = tmp_path("killed.h5");
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CrnnError err = {.msg = ""};

    double t0 = crnn_now_seconds();
    CHECK(checkpoint_write(tmp_path("timing.h5"), &ck, &err) == 0, "%s", err.msg);
    double T = crnn_now_seconds() - t0;
    if (T > 2.0) T = 2.0;
    if (T < 0.01) T = 0.01;
    unlink(tmp_path("timing.h5"));
    fprintf(stderr, "  one %zu-parameter checkpoint takes %.3f s to write\n", ck.num_params, T);

    int rounds = 20, valid = 0, absent = 0, mid_write = 0;
    for (int r = 0; r < rounds; r++) {
        fflush(stderr);
        pid_t child = fork();
        if (child < 0) {
            FAIL("fork: %s", strerror(errno));
            break;
        }
        if (child == 0) {
            for (int64_t it = 1000 * (r + 1);; it++) {
                set_iteration(&ck, it);
                CrnnError e;
                if (checkpoint_write(path, &ck, &e) < 0) {
                    fprintf(stderr, "writer: %s\n", e.msg);
                    _exit(3);
                }
            }
        }
        if (r == 0) { /* the first round waits for a complete file, so that some reads see one */
            double start = crnn_now_seconds();
            while (!file_exists(path) && crnn_now_seconds() - start < 60) sleep_s(0.002);
            sleep_s(T * 0.3);
        } else {
            sleep_s(T * (0.05 + 2.5 * (double)((r * 7) % 19) / 19.0));
        }
        kill(child, SIGKILL);
        int status = 0;
        waitpid(child, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "round %d: the writer ended by itself (status %d)", r, status);
        if (file_exists(tmp)) mid_write++;
        if (!file_exists(path)) {
            absent++;
            continue;
        }
        Checkpoint back;
        int rc = checkpoint_read(path, &back, 1, &err);
        CHECK(rc == 0, "round %d: the file under the checkpoint's name is broken: %s", r, err.msg);
        if (rc == 0) {
            int bad = 0;
            for (size_t j = 0; j < back.num_params; j++)
                if (back.params[j] != pattern(j, back.iteration)) bad++;
            CHECK(bad == 0 && back.optim_step == back.iteration,
                  "round %d: iteration %" PRId64 " has %d wrong parameters", r, back.iteration, bad);
            valid++;
        }
        checkpoint_free(&back);
    }
    fprintf(stderr, "  %d kills: %d left a valid file, %d no file yet, %d interrupted a write\n",
            rounds, valid, absent, mid_write);
    CHECK(valid >= 1, "no kill came after a complete write");
    CHECK(mid_write >= 1, "no kill interrupted a write");
    /* the next write replaces the stale temporary */
    set_iteration(&ck, 7);
    CHECK(checkpoint_write(path, &ck, &err) == 0, "%s", err.msg);
    CHECK(!file_exists(tmp), "stale %s not replaced", tmp);
    Checkpoint back;
    CHECK(checkpoint_read(path, &back, 1, &err) == 0 && back.iteration == 7, "%s", err.msg);
    checkpoint_free(&back);
    checkpoint_free(&ck);
}

/* ---------------------------------------------------------------------------------------- */

static int write_sample(const char *path) {
    Checkpoint ck;
    make_checkpoint(&ck, "lstm", VOCAB_UTF8, 8, 16, 3, 6, 1, 1234, 1234, 3, "adam");
    CrnnError err;
    int rc = checkpoint_write(path, &ck, &err);
    if (rc < 0) fprintf(stderr, "test_checkpoint: %s\n", err.msg);
    checkpoint_free(&ck);
    return rc < 0 ? 1 : 0;
}

static int read_and_print(const char *path, int want_state) {
    Checkpoint ck;
    CrnnError err;
    if (checkpoint_read(path, &ck, want_state, &err) < 0) {
        fprintf(stderr, "test_checkpoint: %s\n", err.msg);
        return 1;
    }
    double sum = 0;
    for (size_t j = 0; j < ck.num_params; j++) sum += ck.params[j];
    printf("model_type=%s V=%d D=%d H=%d L=%d iteration=%" PRId64 " params=%zu sum=%.6f "
           "encoding=%s config=%d has_state=%d\n",
           ck.model.model_type, ck.model.V, ck.model.D, ck.model.H, ck.model.L, ck.iteration,
           ck.num_params, sum, ck.vocab.encoding == VOCAB_BYTES ? "bytes" : "utf-8",
           ck.num_config, ck.has_state);
    checkpoint_free(&ck);
    return 0;
}

int main(int argc, char **argv) {
    crnn_hdf5_quiet();
    if (argc >= 3 && strcmp(argv[1], "--write") == 0) return write_sample(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "--read") == 0)
        return read_and_print(argv[2], argc >= 4 && strcmp(argv[3], "1") == 0);
    if (argc > 1) {
        fprintf(stderr, "usage: test_checkpoint [--write PATH | --read PATH [1]]\n");
        return 2;
    }
    if (check_tmpdir("crnn_test_checkpoint")) return 1;
    fprintf(stderr, "round trips\n");
    test_foreign_params_only();
    test_round_trips();
    fprintf(stderr, "validation\n");
    test_validation();
    fprintf(stderr, "write failures\n");
    test_write_failures();
    fprintf(stderr, "kills during writes\n");
    test_kill_during_write();
    check_tmpdir_remove();
    return check_exit("test_checkpoint");
}
