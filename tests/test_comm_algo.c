/* Run under mpirun: crnn's Comm chooses Open MPI's nonblocking allreduce algorithm per call, a
 * ring for buffers of 64 KB and more and the binomial tree below (src/comm/comm_mpi.c). Reads libnbc's
 * control variable back through MPI_T after each kind of call, and checks the sums. With
 * `user` as the argument, OMPI_MCA_coll_libnbc_iallreduce_algorithm is expected set by the
 * caller (to 4): crnn must leave it alone. Prints "algorithm choice: ok" on rank 0. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "crnn/comm.h"

static int read_algo(void) {
    int index, count, v = -1;
    MPI_T_cvar_handle h;
    if (MPI_T_cvar_get_index("coll_libnbc_iallreduce_algorithm", &index) != MPI_SUCCESS) return -2;
    if (MPI_T_cvar_handle_alloc(index, NULL, &h, &count) != MPI_SUCCESS) return -3;
    MPI_T_cvar_read(h, &v);
    MPI_T_cvar_handle_free(&h);
    return v;
}

int main(int argc, char **argv) {
    const int user = argc > 1 && strcmp(argv[1], "user") == 0;
    CrnnError err;
    Comm *c = comm_create(&argc, &argv, &err);
    if (!c) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int provided, bad = 0;
    MPI_T_init_thread(MPI_THREAD_SERIALIZED, &provided);
    const size_t big = (64 << 10) / sizeof(real), small = 3;
    real *buf = malloc(big * sizeof *buf);
    for (size_t i = 0; i < big; i++) buf[i] = (real)(c->rank + 1);
    if (c->allreduce_mean(c, buf, big, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    int after_big = read_algo();
    const real mean = (real)(c->size + 1) / 2;
    for (size_t i = 0; i < big; i++) bad += buf[i] != mean;
    CHECK(bad == 0, "rank %d: %d of %zu means of a 64 KB allreduce wrong", c->rank, bad, big);
    if (c->allreduce_mean(c, buf, small, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    int after_small = read_algo();
    int64_t v = c->rank;
    if (c->allreduce_max_int(c, &v, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    CHECK(v == c->size - 1, "rank %d: the max of the ranks is %lld", c->rank, (long long)v);
    int after_int = read_algo();
    if (c->allreduce_mean(c, buf, big, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    int after_big2 = read_algo();
    const int want_big = user ? 4 : 1, want_small = user ? 4 : 2;
    CHECK(after_big == want_big && after_small == want_small && after_int == want_small && after_big2 == want_big,
          "rank %d: libnbc's algorithm after a 64 KB allreduce %d (want %d), 12 bytes %d, an int64 %d (want %d), 64 KB again %d",
          c->rank, after_big, want_big, after_small, after_int, want_small, after_big2);
    /* every rank's failures count: each rank exits with the world's */
    int64_t all = failures;
    c->allreduce_max_int(c, &all, &err);
    failures = (int)all;
    if (c->rank == 0 && !failures) printf("algorithm choice: ok (%s, %d ranks)\n", user ? "the user's" : "crnn's", c->size);
    const int rank = c->rank;
    free(buf);
    MPI_T_finalize();
    c->destroy(c);
    return rank == 0 ? check_exit("test_comm_algo") : failures != 0;
}
