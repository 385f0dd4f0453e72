/* The dataset module against a brute-force copy of torch-rnn's DataLoader (view(N, -1, S),
 * transpose, y shifted by one), rank slices, the shrink rule, and every bad-input error. The
 * .h5 files are written here with the HDF5 API in a temporary folder. */
#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crnn/dataset.h"

#include "check.h"

/* Open HDF5 handles anywhere in the process: must be 0 after every call. */
static void check_no_handles(const char *where) {
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    CHECK(n == 0, "%zd HDF5 objects left open after %s", n, where);
}

/* Writes a 1-D (or 2-D when cols > 0) dataset of `type` holding `data` (of `mem_type`). */
static void write_split(hid_t file, const char *name, hid_t type, hid_t mem_type,
                        const void *data, hsize_t n, hsize_t cols) {
    hsize_t dims[2] = {n, cols};
    hid_t space = H5Screate_simple(cols ? 2 : 1, dims, NULL);
    hid_t dset = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (n) H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(dset);
    H5Sclose(space);
}

/* A torch-rnn-like data file with /train, /val and /test at uint8 or uint32. */
static void write_data_file(const char *path, const uint32_t *tokens, int64_t num, int wide) {
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    uint8_t *narrow = malloc((size_t)num + 1);
    for (int64_t i = 0; i < num; i++) narrow[i] = (uint8_t)tokens[i];
    const char *splits[] = {"train", "val", "test"};
    for (int s = 0; s < 3; s++) {
        if (wide)
            write_split(file, splits[s], H5T_STD_U32LE, H5T_NATIVE_UINT32, tokens, num, 0);
        else
            write_split(file, splits[s], H5T_STD_U8LE, H5T_NATIVE_UINT8, narrow, num, 0);
    }
    free(narrow);
    H5Fclose(file);
}

static uint64_t lcg = 12345;
static uint32_t rnd(uint32_t n) {
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(lcg >> 33) % n;
}

/* torch-rnn's DataLoader, written as its tensor operations: vx = v[1 .. num-extra]
 * :view(N, -1, S):transpose(1, 2), vy likewise from v[2 .. num-extra+1]. Returns the number
 * of batches; xs/ys are [count][N][S] (malloc'd), 0-based. */
static int64_t reference_batches(const uint32_t *v, int64_t num, int N, int S, int32_t **xs,
                                 int32_t **ys) {
    int64_t extra = num % ((int64_t)N * S);
    if (extra == 0) extra = (int64_t)N * S;
    int64_t len = num - extra;
    int64_t cols = len / N; /* view(N, -1): every stream holds cols tokens */
    int64_t count = cols / S; /* view(N, -1, S): count chunks of S */
    /* the 3-D views [N][count][S] */
    int32_t *vx = malloc((size_t)len * sizeof *vx), *vy = malloc((size_t)len * sizeof *vy);
    for (int64_t i = 0; i < len; i++) {
        vx[i] = (int32_t)v[i] - 1;
        vy[i] = (int32_t)v[i + 1] - 1;
    }
    /* transpose(1, 2): [count][N][S] */
    *xs = malloc((size_t)len * sizeof **xs);
    *ys = malloc((size_t)len * sizeof **ys);
    for (int n = 0; n < N; n++)
        for (int64_t k = 0; k < count; k++)
            for (int t = 0; t < S; t++) {
                int64_t src = ((int64_t)n * count + k) * S + t;
                int64_t dst = (k * N + n) * S + t;
                (*xs)[dst] = vx[src];
                (*ys)[dst] = vy[src];
            }
    free(vx);
    free(vy);
    return count;
}

/* Loads streams first..first+B-1 of N and compares every batch with the reference. */
static void check_against_reference(const char *path, const uint32_t *v, int64_t num, int N,
                                    int first, int B, int S, int V, int wide) {
    int32_t *xs, *ys;
    int64_t count = reference_batches(v, num, N, S, &xs, &ys);
    Batches b;
    CrnnError err = {.msg = ""};
    int shrunk = -1;
    int rc = dataset_load(&b, path, "train", N, first, B, S, 0, V, &shrunk, &err);
    CHECK(rc == 0, "num %" PRId64 " N %d S %d: %s", num, N, S, err.msg);
    if (rc == 0) {
        CHECK(shrunk == 0, "shrunk set without shrinking");
        CHECK(b.num == num && b.N == N && b.first == first && b.B == B && b.S == S,
              "fields num %" PRId64 " N %d first %d B %d S %d", b.num, b.N, b.first, b.B, b.S);
        CHECK(b.count == count, "count %" PRId64 " vs reference %" PRId64, b.count, count);
        CHECK(b.stream_len == count * S, "stream_len %" PRId64, b.stream_len);
        CHECK(b.elem_size == (wide ? 4 : 1), "elem_size %d", b.elem_size);
        int32_t *x = malloc((size_t)B * S * sizeof *x), *y = malloc((size_t)B * S * sizeof *y);
        int bad = 0;
        for (int64_t k = 0; k < b.count && k < count; k++) {
            dataset_batch(&b, k, x, y);
            for (int s = 0; s < B; s++)
                for (int t = 0; t < S; t++) {
                    int64_t r = (k * N + first + s) * S + t;
                    if (x[s * S + t] != xs[r] || y[s * S + t] != ys[r]) bad++;
                }
        }
        CHECK(bad == 0, "num %" PRId64 " N %d first %d B %d S %d: %d tokens differ", num, N,
              first, B, S, bad);
        free(x);
        free(y);
        dataset_free(&b);
    }
    free(xs);
    free(ys);
    check_no_handles("dataset_load");
}

static void test_batching(void) {
    struct {
        int64_t num;
        int N, S;
    } cases[] = {
        {100, 3, 5},  /* extra = 10 */
        {101, 4, 5},  /* extra = 1: y reaches the very last token */
        {100, 4, 5},  /* num % (N*S) == 0: extra = N*S */
        {120, 4, 5},  /* likewise, several batches */
        {21, 4, 5},   /* N*S == num - 1: exactly one batch */
        {61, 3, 4},
        {1000, 7, 13},
        {5000, 1, 1},
        {4096, 16, 16},
    };
    for (size_t c = 0; c < CRNN_ARRAY_LEN(cases); c++) {
        int64_t num = cases[c].num;
        for (int wide = 0; wide < 2; wide++) {
            int V = wide ? 70000 : 255;
            uint32_t *v = malloc((size_t)num * sizeof *v);
            for (int64_t i = 0; i < num; i++) v[i] = 1 + rnd((uint32_t)V);
            const char *path = tmp_path("batching.h5");
            write_data_file(path, v, num, wide);
            int N = cases[c].N, S = cases[c].S;
            check_against_reference(path, v, num, N, 0, N, S, V, wide);
            /* every way of cutting the N streams into equal rank slices */
            for (int B = 1; B < N; B++) {
                if (N % B) continue;
                for (int first = 0; first < N; first += B)
                    check_against_reference(path, v, num, N, first, B, S, V, wide);
            }
            free(v);
        }
    }
}

static void test_shrink(void) {
    const char *path = tmp_path("shrink.h5");
    int64_t num = 100;
    uint32_t v[100];
    for (int i = 0; i < 100; i++) v[i] = 1 + rnd(50);
    write_data_file(path, v, num, 0);
    CrnnError err = {.msg = ""};
    Batches b;
    int shrunk = 0;
    /* N*S = 100 > num - 1 = 99: N becomes floor(99 / 10) = 9, all streams on this rank */
    int rc = dataset_load(&b, path, "val", 10, 3, 2, 10, 1, 50, &shrunk, &err);
    CHECK(rc == 0, "%s", err.msg);
    if (rc == 0) {
        CHECK(shrunk == 1, "shrunk not set");
        CHECK(b.N == 9 && b.first == 0 && b.B == 9, "N %d first %d B %d", b.N, b.first, b.B);
        CHECK(b.stream_len == 10 && b.count == 1, "stream_len %" PRId64, b.stream_len);
        int32_t x[90], y[90], *xs, *ys;
        reference_batches(v, num, 9, 10, &xs, &ys);
        dataset_batch(&b, 0, x, y);
        CHECK(memcmp(x, xs, sizeof x) == 0 && memcmp(y, ys, sizeof y) == 0, "shrunk batch");
        free(xs);
        free(ys);
        dataset_free(&b);
    }
    /* no shrinking needed: the arguments stand, shrunk stays 0 */
    rc = dataset_load(&b, path, "val", 9, 3, 3, 11, 1, 50, &shrunk, &err);
    CHECK(rc == 0 && shrunk == 0 && b.N == 9 && b.first == 3 && b.B == 3, "%s", err.msg);
    dataset_free(&b);
    /* shrinking to one stream */
    rc = dataset_load(&b, path, "val", 10, 0, 10, 60, 1, 50, &shrunk, &err);
    CHECK(rc == 0 && shrunk == 1 && b.N == 1 && b.count == 1, "%s", err.msg);
    dataset_free(&b);
    /* too short for even one stream of S + 1 tokens */
    rc = dataset_load(&b, path, "val", 10, 0, 10, 99, 1, 50, &shrunk, &err);
    CHECK(rc == 0 && b.N == 1, "S = num - 1 still fits one stream: %s", err.msg);
    dataset_free(&b);
    rc = dataset_load(&b, path, "val", 10, 0, 10, 100, 1, 50, &shrunk, &err);
    CHECK(rc < 0, "S = num must fail");
    CHECK(strstr(err.msg, path) && strstr(err.msg, "/val") && strstr(err.msg, "100 tokens") &&
              strstr(err.msg, "-seq_length"),
          "message: %s", err.msg);
    CHECK(b.tokens == NULL, "tokens left after an error");
    check_no_handles("shrink");
}

/* Expects dataset_load to fail with a message containing every given fragment. */
static void expect_error(const char *path, const char *split, int N, int first, int B, int S,
                         int allow_shrink, int V, const char **frags, int nfrags) {
    CrnnError err = {.msg = ""};
    Batches b;
    int shrunk = 0;
    int rc = dataset_load(&b, path, split, N, first, B, S, allow_shrink, V, &shrunk, &err);
    CHECK(rc < 0, "loading %s /%s should fail", path, split);
    for (int i = 0; i < nfrags; i++)
        CHECK(strstr(err.msg, frags[i]) != NULL, "'%s' not in: %s", frags[i], err.msg);
    CHECK(b.tokens == NULL, "tokens left after an error");
    check_no_handles(err.msg);
    fprintf(stderr, "  ok, error: %s\n", err.msg);
}

static void test_errors(void) {
    uint32_t v[1000];
    for (int i = 0; i < 1000; i++) v[i] = 1 + rnd(60);

    const char *missing = tmp_path("missing.h5");
    expect_error(missing, "train", 2, 0, 2, 5, 0, 60,
                 (const char *[]){"cannot open the data file", missing, "No such file",
                                  "run crnn-preprocess again"}, 4);

    const char *garbage = tmp_path("garbage.h5");
    FILE *f = fopen(garbage, "wb");
    for (int i = 0; i < 4096; i++) fputc((int)rnd(256), f);
    fclose(f);
    expect_error(garbage, "train", 2, 0, 2, 5, 0, 60,
                 (const char *[]){"cannot open the data file", garbage, "not a readable HDF5",
                                  "run crnn-preprocess again"}, 4);

    const char *good = tmp_path("good.h5");
    write_data_file(good, v, 1000, 0);
    {   /* the size of a split */
        CrnnError err = {.msg = ""};
        int64_t num = 0;
        CHECK(dataset_split_size(good, "test", &num, &err) == 0 && num == 1000, "%s", err.msg);
        CHECK(dataset_split_size(missing, "test", &num, &err) < 0 && strstr(err.msg, missing),
              "%s", err.msg);
        CHECK(dataset_split_size(good, "nope", &num, &err) < 0 && strstr(err.msg, "/nope"),
              "%s", err.msg);
        check_no_handles("dataset_split_size");
    }

    /* truncated copies of a valid file */
    FILE *in = fopen(good, "rb");
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    char *bytes = malloc((size_t)size);
    CHECK(fread(bytes, 1, (size_t)size, in) == (size_t)size, "read %s", good);
    fclose(in);
    long cuts[] = {size / 2, size - 1, 100, 0};
    for (size_t c = 0; c < CRNN_ARRAY_LEN(cuts); c++) {
        const char *cut = tmp_path("truncated.h5");
        FILE *o = fopen(cut, "wb");
        fwrite(bytes, 1, (size_t)cuts[c], o);
        fclose(o);
        expect_error(cut, "train", 2, 0, 2, 5, 0, 60, (const char *[]){cut, "crnn-preprocess"},
                     2);
    }
    free(bytes);

    /* split missing */
    const char *nosplit = tmp_path("nosplit.h5");
    hid_t file = H5Fcreate(nosplit, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    write_split(file, "train", H5T_STD_U8LE, H5T_NATIVE_UINT32, v, 1000, 0);
    H5Gclose(H5Gcreate2(file, "test", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Fclose(file);
    expect_error(nosplit, "val", 2, 0, 2, 5, 0, 60,
                 (const char *[]){nosplit, "no /val dataset", "crnn-preprocess"}, 3);
    expect_error(nosplit, "test", 2, 0, 2, 5, 0, 60,
                 (const char *[]){nosplit, "/test", "not a dataset"}, 3);

    /* wrong types and ranks */
    struct {
        const char *name;
        hid_t type;
        hsize_t cols;
        const char *says;
    } bad_types[] = {
        {"int32.h5", H5T_STD_I32LE, 0, "1-D int32"},
        {"int64.h5", H5T_STD_I64LE, 0, "1-D int64"},
        {"uint16.h5", H5T_STD_U16LE, 0, "1-D uint16"},
        {"float.h5", H5T_IEEE_F32LE, 0, "1-D float32"},
        {"matrix.h5", H5T_STD_U8LE, 10, "2-D uint8"},
    };
    for (size_t t = 0; t < CRNN_ARRAY_LEN(bad_types); t++) {
        const char *p = tmp_path(bad_types[t].name);
        file = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        write_split(file, "train", bad_types[t].type, H5T_NATIVE_UINT32, v,
                    bad_types[t].cols ? 100 : 1000, bad_types[t].cols);
        H5Fclose(file);
        expect_error(p, "train", 2, 0, 2, 5, 0, 60,
                     (const char *[]){p, "/train", "must be a 1-D uint8 or uint32",
                                      bad_types[t].says}, 4);
        CrnnError err = {.msg = ""};
        int64_t num;
        CHECK(dataset_split_size(p, "train", &num, &err) < 0, "split size of %s", p);
    }
    /* big-endian unsigned is still uint32 */
    {
        const char *p = tmp_path("be.h5");
        file = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        write_split(file, "train", H5T_STD_U32BE, H5T_NATIVE_UINT32, v, 1000, 0);
        H5Fclose(file);
        check_against_reference(p, v, 1000, 4, 0, 4, 7, 60, 1);
    }

    /* tokens outside 1..V: a 0 in rank 1's slice, then a 61 with V = 60 */
    uint32_t w[1000];
    memcpy(w, v, sizeof w);
    /* N = 4, S = 10: extra = 1000 % 40 = 40, stream_len = 240; rank 1 (B = 2) owns 480..960 */
    w[500] = 0;
    const char *zero = tmp_path("zero.h5");
    write_data_file(zero, w, 1000, 0);
    expect_error(zero, "train", 4, 2, 2, 10, 0, 60,
                 (const char *[]){zero, "/train", "token 0 at offset 500", "1..60",
                                  "JSON"}, 5);
    w[500] = v[500];
    w[960] = 61; /* the y of the rank's last position: read too */
    const char *big = tmp_path("big.h5");
    write_data_file(big, w, 1000, 1);
    expect_error(big, "test", 4, 2, 2, 10, 0, 60,
                 (const char *[]){big, "/test", "token 61 at offset 960", "1..60", "JSON"}, 5);
    /* the same file is fine for rank 0 and with a larger vocabulary */
    check_against_reference(big, w, 1000, 4, 0, 2, 10, 60, 1);
    check_against_reference(big, w, 1000, 4, 2, 2, 10, 61, 1);

    /* too little data without shrinking: N*S > num - 1 */
    expect_error(good, "train", 100, 0, 50, 10, 0, 60,
                 (const char *[]){good, "/train", "1000 tokens", "100 x 10 + 1 = 1001",
                                  "smaller -batch_size or -seq_length"}, 5);
    /* empty split */
    const char *empty = tmp_path("empty.h5");
    write_data_file(empty, v, 0, 0);
    expect_error(empty, "val", 1, 0, 1, 5, 1, 60,
                 (const char *[]){empty, "/val", "0 tokens", "-seq_length"}, 4);
    expect_error(empty, "val", 1, 0, 1, 5, 0, 60,
                 (const char *[]){empty, "/val", "0 tokens", "-batch_size"}, 4);

    /* argument errors */
    expect_error(good, "train", 4, 3, 2, 10, 0, 60, (const char *[]){"streams 3..4"}, 1);
    expect_error(good, "train", 4, 0, 4, 0, 0, 60, (const char *[]){"-seq_length"}, 1);
}

int main(void) {
    crnn_hdf5_quiet();
    if (check_tmpdir("crnn_test_dataset")) return 1;
    test_batching();
    test_shrink();
    test_errors();
    check_tmpdir_remove();
    return check_exit("test_dataset");
}
