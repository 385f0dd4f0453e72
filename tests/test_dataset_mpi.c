/* Run under mpirun -np 3: each rank reads its shard of /train with parallel HDF5 (one collective
 * MPI-IO read) and checks it against the same streams of a serial read of the whole split, for
 * two batch shapes and both token widths. Usage: test_dataset_mpi DATA8.h5 DATA32.h5 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "crnn/dataset.h"

static void check_shard(const char *path, int B, int S, int rank, int size) {
    CrnnError err;
    Batches shard, whole;
    int shrunk;
    MPI_Comm world = MPI_COMM_WORLD;
    if (dataset_load_shard(&shard, path, "train", size * B, rank * B, B, S, 0, 100000, &shrunk, &world, &err)) {
        FAIL("rank %d: shard: %s", rank, err.msg);
        return;
    }
    if (dataset_load(&whole, path, "train", size * B, 0, size * B, S, 0, 100000, &shrunk, &err)) {
        FAIL("rank %d: whole: %s", rank, err.msg);
        return;
    }
    int bad = shard.count != whole.count || shard.stream_len != whole.stream_len;
    int32_t *xs = malloc(sizeof(int32_t) * B * S), *ys = malloc(sizeof(int32_t) * B * S);
    int32_t *xw = malloc(sizeof(int32_t) * size * B * S), *yw = malloc(sizeof(int32_t) * size * B * S);
    for (int64_t k = 0; k < shard.count && !bad; k++) {
        dataset_batch(&shard, k, xs, ys);
        dataset_batch(&whole, k, xw, yw);
        /* this rank's streams are rows rank*B .. rank*B+B-1 of the whole batch */
        if (memcmp(xs, xw + (size_t)rank * B * S, sizeof(int32_t) * B * S) ||
            memcmp(ys, yw + (size_t)rank * B * S, sizeof(int32_t) * B * S))
            bad = 1;
    }
    CHECK(!bad, "rank %d: %s B=%d S=%d: the shard differs from the serial read", rank, path, B, S);
    free(xs), free(ys), free(xw), free(yw);
    dataset_free(&shard);
    dataset_free(&whole);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    crnn_hdf5_quiet();
    for (int f = 1; f < argc; f++) {
        check_shard(argv[f], 5, 7, rank, size);
        check_shard(argv[f], 2, 13, rank, size);
    }
    /* every rank's failures count: each rank exits with the world's */
    int mine = failures;
    MPI_Allreduce(&mine, &failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0 && !failures) printf("%d ranks: every shard equals the serial read\n", size);
    MPI_Finalize();
    return rank == 0 ? check_exit("test_dataset_mpi") : failures != 0;
}
