/* The preprocessed data (torch-rnn's HDF5 file) and the batches a rank trains on.
 *
 * A split of `num` tokens seen as N streams of length S-steps (docs/FORMATS.md section 2): if
 * N*S > num-1 then N shrinks to floor((num-1)/S) when allowed, else it is an error.
 * extra = num mod (N*S), or N*S when that is 0; the first num-extra tokens are N contiguous
 * streams of stream_len tokens each; y is x shifted by one token. Batch k is columns
 * k*S .. k*S+S-1 of every stream. This rank holds streams first .. first+B-1 only: tokens
 * [first*stream_len, (first+B)*stream_len] of the split, one contiguous read. */
#ifndef CRNN_DATASET_H
#define CRNN_DATASET_H

#include <stdint.h>

#include "crnn/common.h"

typedef struct Batches {
    int64_t num;        /* tokens in the split */
    int N;              /* streams in all (after shrinking) */
    int first, B;       /* this rank's streams */
    int S;
    int64_t stream_len; /* tokens per stream, a multiple of S */
    int64_t count;      /* batches per pass: stream_len / S */
    int elem_size;      /* 1 (uint8 file) or 4 (uint32 file) */
    void *tokens;       /* B*stream_len + 1 tokens, 1-based as in the file */
} Batches;

/* Number of tokens in /<split> of an HDF5 data file (checks it exists and is 1-D uint8/uint32). */
int dataset_split_size(const char *h5_path, const char *split, int64_t *num, CrnnError *err);

/* Loads this rank's streams of a split. N streams in all; this rank owns first..first+B-1
 * (for a single process: first = 0, B = N). When allow_shrink is 1 and the split is too short
 * for N*S, N shrinks as torch-rnn does (and *shrunk is set to 1); this rank then takes all
 * streams (first = 0, B = N) -- used for validation, which runs on one rank. When
 * allow_shrink is 0, too little data is an error suggesting a smaller -batch_size or
 * -seq_length. Every token must be in 1..vocab_size, else an error names the file and split. */
int dataset_load(Batches *b, const char *h5_path, const char *split, int N, int first, int B,
                 int S, int allow_shrink, int vocab_size, int *shrunk, CrnnError *err);

/* The same for one rank of many: with mpi_comm (a pointer to the job's MPI_Comm) every rank
 * of it must call this together, and each reads its slice in one collective parallel-HDF5
 * (MPI-IO) read; a rank may then own no stream (B = 0: a split of fewer streams than ranks).
 * With mpi_comm NULL it is dataset_load. */
int dataset_load_shard(Batches *b, const char *h5_path, const char *split, int N, int first,
                       int B, int S, int allow_shrink, int vocab_size, int *shrunk,
                       const void *mpi_comm, CrnnError *err);

/* Batch k (0 <= k < count): x and y are [B, S] row-major (stream-major), 0-based indices. */
void dataset_batch(const Batches *b, int64_t k, int32_t *x, int32_t *y);

void dataset_free(Batches *b);

#endif
