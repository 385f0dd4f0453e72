/* crnn-test-grads CKPT DATA.h5 DATA.json B S OUT.h5: the loss and every parameter's gradient
 * on the first training batch (B streams of S steps, zero initial state), for the comparison
 * with the PyTorch reference (tests/test_parity.py). Built twice: float and double (…64). With
 * CRNN_TEST_PRECISION=bf16 in the environment the products are -precision bf16's. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crnn/checkpoint.h"
#include "crnn/dataset.h"
#include "crnn/model.h"

static int fail(const char *what) {
    fprintf(stderr, "crnn-test-grads: %s\n", what);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 7) return fail("usage: crnn-test-grads CKPT DATA.h5 DATA.json B S OUT.h5");
    crnn_hdf5_quiet();
    CrnnError err;
    Checkpoint ck;
    if (checkpoint_read(argv[1], &ck, 0, &err)) return fail(err.msg);
    int B = atoi(argv[4]), S = atoi(argv[5]);
    Batches data;
    int shrunk = 0;
    if (dataset_load(&data, argv[2], "train", B, 0, B, S, 0, ck.vocab.size, &shrunk, &err)) return fail(err.msg);
    Backend *be = backend_cpu_create(1, &err);
    const char *precision = getenv("CRNN_TEST_PRECISION");
    if (be && precision && strcmp(precision, "bf16") == 0 && backend_set_precision(be, PRECISION_BF16, &err))
        return fail(err.msg);
    Model m;
    if (!be || model_create(&m, &ck.model, be, B, S, &err)) return fail(err.msg);
    model_set_params(&m, ck.params);
    int32_t *x = malloc(sizeof(int32_t) * B * S), *y = malloc(sizeof(int32_t) * B * S);
    dataset_batch(&data, 0, x, y);
    double loss = model_forward(&m, x, y, B, S);
    model_backward(&m, NULL, NULL);

    hid_t f = H5Fcreate(argv[6], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return fail("cannot create the output file");
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "loss", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, &loss);
    H5Aclose(a);
    H5Sclose(sp);
    hid_t type = sizeof(real) == sizeof(double) ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT;
    for (int t = 0; t < m.num_tensors; t++) {
        const ParamTensor *p = &m.tensors[t];
        hsize_t dims[2] = {(hsize_t)p->dims[0], (hsize_t)p->dims[1]};
        hid_t s = H5Screate_simple(p->ndim, dims, NULL);
        hid_t d = H5Dcreate2(f, p->name, type, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (d < 0 || H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, m.grads + p->offset) < 0)
            return fail("cannot write a gradient");
        H5Dclose(d);
        H5Sclose(s);
    }
    H5Pclose(lcpl);
    H5Fclose(f);
    free(x);
    free(y);
    model_destroy(&m);
    backend_destroy(be);
    dataset_free(&data);
    checkpoint_free(&ck);
    return 0;
}
