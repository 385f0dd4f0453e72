/* The files of a run, by name: the checkpoint folder, the checkpoints' names (torch-rnn's and
 * char-rnn's), finding them (-resume auto), pruning them (-keep_last), the best-model link, and
 * char-rnn's -data_dir preprocessing. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crnn/atomic_file.h"
#include "crnn/checkpoint.h"
#include "crnn/preprocess.h"
#include "train_internal.h"

int train_prepare_checkpoint_folder(const char *checkpoint_name, CrnnError *err) {
    char copy[PATH_MAX];
    if (snprintf(copy, sizeof copy, "%s", checkpoint_name) >= (int)sizeof copy)
        return crnn_fail_usage(err, "-checkpoint_name is longer than a path may be (%d bytes)", PATH_MAX - 1);
    const char *dir = dirname(copy);
    CrnnError why;
    if (atomic_file_mkdir_p(dir, &why))
        return crnn_fail_io(err, "cannot create the checkpoint folder %s (%s); choose another -checkpoint_name", dir,
                            why.msg);
    char probe[PATH_MAX + 64];
    snprintf(probe, sizeof probe, "%s/.crnn-write-test-%ld", dir, (long)getpid());
    FILE *fp = fopen(probe, "w");
    if (!fp)
        return crnn_fail(err, "the checkpoint folder %s is not writable: %s; choose another -checkpoint_name",
                         dir, strerror(errno));
    fclose(fp);
    unlink(probe);
    return 0;
}

/* Whether `file` is a checkpoint of prefix `base`, and its order (newest highest): the
 * iteration of torch-rnn's "<base>_<i>.h5", or the epoch of char-rnn's
 * "<base>_epoch<e>_<val>.h5". */
static int checkpoint_order_of(const char *file, const char *base, double *order) {
    size_t n = strlen(base), len = strlen(file);
    if (strncmp(file, base, n) != 0 || file[n] != '_' || len < n + 4 || strcmp(file + len - 3, ".h5") != 0)
        return 0;
    const char *p = file + n + 1, *end = file + len - 3;
    if (strncmp(p, "epoch", 5) == 0) { /* char-rnn: epoch<e>_<val> */
        char *q;
        double e = strtod(p + 5, &q);
        if (q == p + 5 || *q != '_' || q + 1 >= end) return 0;
        *order = e;
        return 1;
    }
    int64_t v = 0;
    const char *q = p;
    for (; q < end && *q >= '0' && *q <= '9'; q++) v = v * 10 + (*q - '0');
    if (q == p || q != end) return 0;
    *order = (double)v;
    return 1;
}

typedef struct Found {
    double order;
    char path[PATH_MAX];
} Found;

static int cmp_found_desc(const void *a, const void *b) {
    double x = ((const Found *)a)->order, y = ((const Found *)b)->order;
    return x < y ? 1 : (x > y ? -1 : 0);
}

/* Every checkpoint of the prefix, newest first. *out is malloc'd. No folder: none. */
static int list_checkpoints(const char *checkpoint_name, Found **out, int *count, CrnnError *err) {
    char copy1[PATH_MAX], copy2[PATH_MAX];
    snprintf(copy1, sizeof copy1, "%s", checkpoint_name);
    snprintf(copy2, sizeof copy2, "%s", checkpoint_name);
    const char *dir = dirname(copy1), *base = basename(copy2);
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : crnn_fail_io(err, "cannot list the checkpoint folder %s: %s", dir, strerror(errno));
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        double order;
        if (!checkpoint_order_of(e->d_name, base, &order)) continue;
        if (*count == cap) {
            cap = cap ? 2 * cap : 16;
            Found *grown = realloc(*out, (size_t)cap * sizeof **out);
            if (!grown) {
                closedir(d);
                free(*out);
                *out = NULL;
                *count = 0;
                return crnn_fail_nomem(err, "out of memory listing the checkpoints in %s", dir);
            }
            *out = grown;
        }
        (*out)[*count].order = order;
        snprintf((*out)[*count].path, PATH_MAX, "%s/%s", dir, e->d_name);
        (*count)++;
    }
    closedir(d);
    if (*count) qsort(*out, (size_t)*count, sizeof **out, cmp_found_desc);
    return 0;
}

int train_find_resume_checkpoint(const char *checkpoint_name, char *path, size_t cap, int quiet,
                                 const Reporter *rep, CrnnError *err) {
    Found *found;
    int count;
    path[0] = '\0';
    if (list_checkpoints(checkpoint_name, &found, &count, err)) return -1;
    for (int k = 0; k < count; k++) {
        Checkpoint ck;
        CrnnError e;
        if (checkpoint_read(found[k].path, &ck, 1, &e) == 0) {
            checkpoint_free(&ck);
            snprintf(path, cap, "%s", found[k].path);
            break;
        }
        if (crnn_error_kind(&e) != CRNN_ERR_CORRUPT) { /* memory, I/O: a retry may resume the newest */
            *err = e;
            free(found);
            return -1;
        }
        if (!quiet) report(rep, REPORT_NOTE, "skipping %s: %s", found[k].path, e.msg);
    }
    free(found);
    return 0;
}

void train_remove_old_checkpoints(const char *checkpoint_name, int64_t keep_last) {
    if (keep_last <= 0) return;
    Found *found;
    int count;
    if (list_checkpoints(checkpoint_name, &found, &count, NULL)) return; /* left for the next checkpoint */
    for (int k = (int)keep_last; k < count; k++) {
        unlink(found[k].path);
        /* and its sidecar JSON: "<name>_<i>.h5" -> "<name>_<i>.json" (torch-rnn's names) */
        size_t n = strlen(found[k].path);
        if (!strstr(found[k].path, "_epoch") && n > 3 && n + 3 < PATH_MAX) {
            strcpy(found[k].path + n - 3, ".json");
            unlink(found[k].path);
        }
    }
    free(found);
}

int train_prepare_data_dir(const char *dir, Comm *comm, int quiet, const Reporter *rep, char *h5, char *json,
                           size_t cap, CrnnError *err) {
    char txt[PATH_MAX + 16];
    snprintf(txt, sizeof txt, "%s/input.txt", dir);
    snprintf(h5, cap, "%s/input.h5", dir);
    snprintf(json, cap, "%s/input.json", dir);
    int64_t status = 0;
    if (comm->rank == 0) {
        int needs = preprocess_needs_update(txt, h5, json, err);
        if (needs < 0) {
            crnn_fail_context(err, "-data_dir %s needs the text as input.txt", dir);
            status = 1;
        } else if (needs) {
            PreprocessOptions opt;
            preprocess_default_options(&opt);
            opt.input_txt = txt;
            opt.output_h5 = h5;
            opt.output_json = json;
            opt.val_frac = 0.05; /* char-rnn's fractions */
            opt.test_frac = 0;
            if (!quiet)
                report(rep, REPORT_INFO, "preprocessing %s into %s and %s (utf-8, 5%% validation, no test split)", txt,
                       h5, json);
            if (preprocess_run(&opt, NULL, err)) status = 1;
        }
    }
    if (comm->broadcast(comm, &status, sizeof status, 0, err)) return -1;
    if (status)
        return comm->rank == 0 ? -1 : crnn_fail(err, "rank %d: rank 0 could not preprocess %s (its message says why)", comm->rank, txt);
    return 0;
}

void train_checkpoint_path(const TrainSettings *s, int64_t iteration, double epoch, double val_loss, char *out,
                           size_t cap) {
    if (s->charrnn_names) /* char-rnn's lm_<savefile>_epoch<e>_<val>.h5 */
        snprintf(out, cap, "%s_epoch%.2f_%.4f.h5", s->checkpoint_name, epoch, val_loss);
    else
        snprintf(out, cap, "%s_%" PRId64 ".h5", s->checkpoint_name, iteration);
}

/* <prefix>_best.h5: a hard link to (or, where links fail, a copy of) the checkpoint just
 * written, replaced atomically. */
int train_link_best(const char *checkpoint_name, const char *path, CrnnError *err) {
    char best[PATH_MAX + 16];
    snprintf(best, sizeof best, "%s_best.h5", checkpoint_name);
    return atomic_file_link_or_copy(path, best, err); /* its errors name best and say why */
}
