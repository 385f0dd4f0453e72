/* What every Comm shares, whichever carries it: choosing one at start (comm_create) and the
 * agreement that every rank is fine (comm_all_ok). The -comm_timeout bookkeeping is in
 * comm_timer.c. */
#include <stdio.h>
#include <stdlib.h>

#include "crnn/comm.h"

/* srun without PMI support (srun --mpi=none, Slurm's usual default) starts each of its N tasks
 * as a world of its own: N runs that would each train alone and write the same checkpoints.
 * A process srun started (SLURM_STEP_NUM_TASKS is set for a step, not in the batch shell) whose
 * world is not the step's task count is refused. Under mpirun (OMPI_COMM_WORLD_SIZE is set at
 * start) the Slurm variables describe mpirun's own daemons, not the ranks: no comparison. */
static int check_slurm_step(const Comm *c, int started_by_mpirun, CrnnError *err) {
    const char *tasks = getenv("SLURM_STEP_NUM_TASKS");
    if (started_by_mpirun || !tasks || !*tasks) return 0;
    char *end;
    long n = strtol(tasks, &end, 10);
    if (*end != '\0' || n < 1 || n == c->size) return 0;
    return crnn_fail(err,
                     "srun started %ld tasks (SLURM_STEP_NUM_TASKS=%s) but this process is in an MPI world of %d: "
                     "srun did not connect the tasks, so each would train alone; start them with `srun --mpi=pmix` "
                     "(Debian's Open MPI has no PMI2) or with mpirun inside the allocation (launch/crnn-launch does either)",
                     n, tasks, c->size);
}

Comm *comm_create(int *argc, char ***argv, CrnnError *err) {
    static const char *const launcher_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                                                "PMI_SIZE", NULL};
    int by_mpirun = getenv("OMPI_COMM_WORLD_SIZE") != NULL;
    Comm *c = NULL;
    for (int k = 0; launcher_vars[k] && !c; k++)
        if (getenv(launcher_vars[k])) {
            c = comm_mpi_create(argc, argv, err);
            if (!c) return NULL;
        }
    if (!c) c = comm_single_create(err);
    if (c && check_slurm_step(c, by_mpirun, err)) {
        c->destroy(c);
        return NULL;
    }
    return c;
}

int comm_all_ok(Comm *c, int ok, const char *what, CrnnError *err) {
    int64_t failed = ok ? 0 : 1;
    CrnnError why;
    if (c->allreduce_max_int(c, &failed, &why)) {
        if (ok) *err = why;
        return -1;
    }
    if (!failed) return 0;
    if (ok) crnn_fail(err, "rank %d of %d: stopping, another rank %s (its message says why)", c->rank, c->size, what);
    return -1;
}
