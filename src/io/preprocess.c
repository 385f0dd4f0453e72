/* Text -> torch-rnn's HDF5 splits and vocabulary JSON, streaming (see include/crnn/preprocess.h).
 *
 * Pass 1 reads the file in READ_BUF blocks, decodes UTF-8 (or takes bytes) and builds the
 * vocabulary in order of first appearance with a flat code point -> 1-based index table.
 * Pass 2 reads it again, maps every token to its index into an OUT_CHUNK buffer and writes the
 * buffer with hyperslab writes into /train, /val and /test, which are contiguous runs of the
 * file in that order. Pure-ASCII runs of 8 bytes take a fast path in both passes. With an
 * existing vocabulary (--input_json) the table starts as that vocabulary and pass 1 collects
 * the tokens outside it instead of adding them. An input that cannot be read twice (a pipe) is
 * copied first to an unnamed temporary file. */
#define _GNU_SOURCE /* fallocate */
#include "crnn/preprocess.h"
#include "crnn/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_BUF (1u << 22)  /* bytes per read() */
#define OUT_CHUNK (1u << 21) /* tokens per HDF5 write */
#define CODE_POINTS 0x110000u
#define ASCII8 0x8080808080808080ull
#define UNKNOWN_SHOWN 8 /* characters outside an existing vocabulary named in the message */

void preprocess_default_options(PreprocessOptions *opt) {
    memset(opt, 0, sizeof *opt);
    opt->val_frac = 0.1;
    opt->test_frac = 0.1;
    opt->encoding = VOCAB_UTF8;
}

/* Same file (by device and inode) when both exist. */
static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (strcmp(a, b) == 0) return 1;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0) return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int is_stdin(const char *input_txt) { return strcmp(input_txt, "-") == 0; }

static int given(const char *s) { return s && *s; }

int preprocess_check_options(const PreprocessOptions *opt, CrnnError *err) {
    if (!given(opt->input_txt))
        return crnn_fail_usage(err, "no input file; give the text with --input_txt FILE (- for standard input)");
    if (!given(opt->output_h5))
        return crnn_fail_usage(err, "no output file; give --output_h5 FILE.h5");
    if (!given(opt->output_json) && !given(opt->input_json))
        return crnn_fail_usage(err, "no output file; give --output_json FILE.json");
    if (!(opt->val_frac >= 0 && opt->val_frac < 1))
        return crnn_fail_usage(err, "--val_frac must be at least 0 and below 1, got %g", opt->val_frac);
    if (!(opt->test_frac >= 0 && opt->test_frac < 1))
        return crnn_fail_usage(err, "--test_frac must be at least 0 and below 1, got %g", opt->test_frac);
    if (!(opt->val_frac + opt->test_frac < 1))
        return crnn_fail_usage(err,
                               "--val_frac %g plus --test_frac %g leaves nothing to train on; their sum "
                               "must be below 1 (e.g. --val_frac 0.1 --test_frac 0.1)",
                               opt->val_frac, opt->test_frac);
    if (opt->encoding != VOCAB_UTF8 && opt->encoding != VOCAB_BYTES)
        return crnn_fail_usage(err, "--encoding must be utf-8 or bytes");
    if (given(opt->output_json) && same_file(opt->output_h5, opt->output_json))
        return crnn_fail_usage(err, "--output_h5 and --output_json are both %s; give two different files",
                               opt->output_h5);
    if (given(opt->input_json) && same_file(opt->output_h5, opt->input_json))
        return crnn_fail_usage(err, "--output_h5 is the vocabulary %s given to --input_json; give another "
                                    "--output_h5 name",
                               opt->input_json);
    if (!is_stdin(opt->input_txt) &&
        (same_file(opt->input_txt, opt->output_h5) ||
         (given(opt->output_json) && same_file(opt->input_txt, opt->output_json))))
        return crnn_fail_usage(err, "an output file is the input %s itself; give other --output_h5 and "
                                    "--output_json names",
                               opt->input_txt);
    return 0;
}

void preprocess_summary_text(const PreprocessSummary *s, char *out, size_t cap) {
    snprintf(out, cap,
             "Total vocabulary size: %d\n"
             "Total tokens in file: %" PRId64 "\n"
             "  Training size: %" PRId64 "\n"
             "  Val size: %" PRId64 "\n"
             "  Test size: %" PRId64 "\n"
             "Using dtype  <class 'numpy.%s'>\n",
             s->vocab_size, s->total, s->train_size, s->val_size, s->test_size,
             s->elem_size == 1 ? "uint8" : "uint32");
}

static int newer(const struct timespec *a, const struct timespec *b) {
    return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

int preprocess_needs_update(const char *input_txt, const char *output_h5,
                            const char *output_json, CrnnError *err) {
    struct stat in, h5, js;
    if (stat(input_txt, &in) != 0)
        return crnn_fail(err, "cannot read %s: %s; check the path", input_txt, strerror(errno));
    if (stat(output_h5, &h5) != 0 || stat(output_json, &js) != 0) return 1;
    return newer(&in.st_mtim, &h5.st_mtim) || newer(&in.st_mtim, &js.st_mtim);
}

/* ---------------------------------------------------------------------------------------- */
/* Reading the input in blocks */

typedef struct Source {
    const char *path;
    int fd;
    unsigned char *buf; /* READ_BUF bytes */
    size_t len, pos;    /* valid bytes, next unread byte */
    int64_t base;       /* offset of buf[0] in the text */
    off_t origin;       /* file offset of the text's first byte (standard input may start later) */
    int eof;
} Source;

static int source_rewind(Source *s, CrnnError *err) {
    if (lseek(s->fd, s->origin, SEEK_SET) != s->origin)
        return crnn_fail(err, "cannot reread %s: %s; the input is read twice: give a regular file "
                              "to --input_txt, or - to read standard input", s->path, strerror(errno));
    s->len = s->pos = 0;
    s->base = 0;
    s->eof = 0;
    return 0;
}

/* Keeps the unread tail (under 4 bytes: a split UTF-8 sequence) and reads until full or EOF. */
static int source_fill(Source *s, CrnnError *err) {
    size_t keep = s->len - s->pos;
    memmove(s->buf, s->buf + s->pos, keep);
    s->base += (int64_t)s->pos;
    s->pos = 0;
    s->len = keep;
    while (s->len < READ_BUF && !s->eof) {
        ssize_t got = read(s->fd, s->buf + s->len, READ_BUF - s->len);
        if (got < 0) {
            if (errno == EINTR) continue;
            return crnn_fail(err, "cannot read %s: %s; check --input_txt", s->path,
                             strerror(errno));
        }
        if (got == 0) s->eof = 1;
        s->len += (size_t)got;
    }
    return 0;
}

static int bad_utf8(const Source *s, const unsigned char *p, CrnnError *err) {
    int64_t off = s->base + (int64_t)(p - s->buf);
    size_t left = s->len - (size_t)(p - s->buf);
    if (s->eof && left < 4 && *p >= 0xC2 && *p <= 0xF4) {
        /* a lead byte whose continuation bytes are all there so far: the file ends early */
        int ok = 1;
        for (size_t k = 1; k < left; k++) ok &= (p[k] & 0xC0) == 0x80;
        if (ok)
            return crnn_fail(err,
                             "%s: invalid UTF-8 at byte %" PRId64
                             ": the file ends in the middle of a character; if it is not "
                             "UTF-8 text, run again with --encoding bytes",
                             s->path, off);
    }
    return crnn_fail(err,
                     "%s: invalid UTF-8 at byte %" PRId64 " (0x%02X); if the file is not UTF-8 "
                     "text, run again with --encoding bytes",
                     s->path, off, *p);
}

static int changed(const Source *s, CrnnError *err) {
    return crnn_fail(err, "%s changed while it was being read; run again when nothing writes to it",
                     s->path);
}

/* ---------------------------------------------------------------------------------------- */
/* Pass 1: count tokens, vocabulary in order of first appearance */

typedef struct Counts {
    uint32_t *map;    /* [CODE_POINTS]: token -> 1-based index, 0 when not seen yet */
    uint32_t *tokens; /* [CODE_POINTS]: tokens in order of first appearance */
    int V;
    int64_t N;
    /* with an existing vocabulary: map and tokens hold it from the start (V tokens), and a token
     * outside it is counted here (its map entry then UINT32_MAX) instead of added */
    int fixed;
    int unknown;
    uint32_t unknown_token[UNKNOWN_SHOWN];
    int64_t unknown_at[UNKNOWN_SHOWN]; /* byte offset of its first appearance */
} Counts;

static void see_unknown(Counts *c, uint32_t token, int64_t at) {
    c->map[token] = UINT32_MAX;
    if (c->unknown < UNKNOWN_SHOWN) {
        c->unknown_token[c->unknown] = token;
        c->unknown_at[c->unknown] = at;
    }
    c->unknown++;
}

/* a token of the text at buffer position `at` */
#define SEE(tok, at)                                                                           \
    do {                                                                                       \
        uint32_t c_ = (tok);                                                                   \
        if (!map[c_]) {                                                                        \
            if (c->fixed) {                                                                    \
                see_unknown(c, c_, s->base + (int64_t)((at) - s->buf));                        \
            } else {                                                                           \
                tokens[V++] = c_;                                                              \
                map[c_] = (uint32_t)V;                                                         \
            }                                                                                  \
        }                                                                                      \
    } while (0)

static int count_tokens(Source *s, VocabEncoding enc, Counts *c, CrnnError *err) {
    uint32_t *map = c->map, *tokens = c->tokens;
    int V = c->V;
    int64_t N = 0;
    for (;;) {
        if (source_fill(s, err)) return -1;
        if (s->pos == s->len) break; /* end of file, nothing left */
        const unsigned char *p = s->buf + s->pos, *end = s->buf + s->len;
        if (enc == VOCAB_BYTES) {
            N += end - p;
            for (; p < end; p++) SEE(*p, p);
        } else {
            while (p < end) {
                if (end - p >= 8) {
                    uint64_t w;
                    memcpy(&w, p, 8);
                    if (!(w & ASCII8)) {
                        for (int k = 0; k < 8; k++) SEE(p[k], p + k);
                        p += 8;
                        N += 8;
                        continue;
                    }
                }
                if (*p < 0x80) {
                    SEE(*p, p);
                    p++;
                    N++;
                    continue;
                }
                if (end - p < 4 && !s->eof) break; /* the sequence may go on in the next block */
                uint32_t cp;
                int used = utf8_decode(p, (size_t)(end - p), &cp);
                if (!used) return bad_utf8(s, p, err);
                SEE(cp, p);
                p += used;
                N++;
            }
        }
        s->pos = (size_t)(p - s->buf);
        if (s->eof && s->pos == s->len) break;
    }
    c->V = V;
    c->N = N;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Pass 2: indices into the three datasets */

typedef struct Sink {
    const char *path;  /* the .h5.tmp, for messages */
    hid_t dset[3];     /* train, val, test */
    int64_t start[4];  /* split k covers global tokens [start[k], start[k+1]) */
    hid_t memtype;
    size_t elem;
    int64_t written;   /* tokens written so far */
} Sink;

static int sink_write(Sink *k, const void *buf, int64_t count, CrnnError *err) {
    int64_t g = k->written;
    if (g + count > k->start[3]) return -2; /* more tokens than in pass 1 */
    for (int s = 0; s < 3; s++) {
        int64_t lo = g > k->start[s] ? g : k->start[s];
        int64_t hi = g + count < k->start[s + 1] ? g + count : k->start[s + 1];
        if (hi <= lo) continue;
        hsize_t off = (hsize_t)(lo - k->start[s]), cnt = (hsize_t)(hi - lo);
        hid_t fspace = H5Dget_space(k->dset[s]);
        hid_t mspace = H5Screate_simple(1, &cnt, NULL);
        herr_t rc = -1;
        if (fspace >= 0 && mspace >= 0 &&
            H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &off, NULL, &cnt, NULL) >= 0)
            rc = H5Dwrite(k->dset[s], k->memtype, mspace, fspace, H5P_DEFAULT,
                          (const char *)buf + (size_t)(lo - g) * k->elem);
        if (mspace >= 0) H5Sclose(mspace);
        if (fspace >= 0) H5Sclose(fspace);
        if (rc < 0)
            return crnn_fail(err, "cannot write %s (HDF5 write failed); check the free space "
                                  "of its disk",
                             k->path);
    }
    k->written += count;
    return 0;
}

static int flush(Sink *k, const Source *s, const void *buf, int64_t count, CrnnError *err) {
    int rc = sink_write(k, buf, count, err);
    return rc == -2 ? changed(s, err) : rc;
}

/* One function per output type: T is uint8_t (V <= 255) or uint32_t. `miss` collects
 * tokens missing from pass 1's map (the file changed between the passes). */
#define DEFINE_MAP_TOKENS(NAME, T)                                                             \
    static int NAME(Source *s, VocabEncoding enc, const uint32_t *map, T *out, Sink *k,        \
                    CrnnError *err) {                                                          \
        size_t o = 0;                                                                          \
        uint32_t miss = 0;                                                                     \
        for (;;) {                                                                             \
            if (source_fill(s, err)) return -1;                                                \
            if (s->pos == s->len) break;                                                       \
            const unsigned char *p = s->buf + s->pos, *end = s->buf + s->len;                  \
            while (p < end) {                                                                  \
                if (o + 8 > OUT_CHUNK) {                                                       \
                    if (flush(k, s, out, (int64_t)o, err)) return -1;                          \
                    o = 0;                                                                     \
                }                                                                              \
                if (enc == VOCAB_BYTES) {                                                      \
                    const unsigned char *stop = p + (OUT_CHUNK - o);                           \
                    if (stop > end) stop = end;                                                \
                    for (; p < stop; p++) {                                                    \
                        uint32_t m = map[*p];                                                  \
                        miss |= (m - 1) >> 31;                                                 \
                        out[o++] = (T)m;                                                       \
                    }                                                                          \
                    continue;                                                                  \
                }                                                                              \
                if (end - p >= 8) {                                                            \
                    uint64_t w;                                                                \
                    memcpy(&w, p, 8);                                                          \
                    if (!(w & ASCII8)) {                                                       \
                        for (int j = 0; j < 8; j++) {                                          \
                            uint32_t m = map[p[j]];                                            \
                            miss |= (m - 1) >> 31;                                             \
                            out[o + j] = (T)m;                                                 \
                        }                                                                      \
                        o += 8;                                                                \
                        p += 8;                                                                \
                        continue;                                                              \
                    }                                                                          \
                }                                                                              \
                uint32_t cp;                                                                   \
                int used;                                                                      \
                if (*p < 0x80) {                                                               \
                    cp = *p;                                                                   \
                    used = 1;                                                                  \
                } else {                                                                       \
                    if (end - p < 4 && !s->eof) break;                                         \
                    used = utf8_decode(p, (size_t)(end - p), &cp);                             \
                    if (!used) return changed(s, err);                                         \
                }                                                                              \
                uint32_t m = map[cp];                                                          \
                miss |= (m - 1) >> 31;                                                         \
                out[o++] = (T)m;                                                               \
                p += used;                                                                     \
            }                                                                                  \
            s->pos = (size_t)(p - s->buf);                                                     \
            if (miss) return changed(s, err);                                                  \
            if (s->eof && s->pos == s->len) break;                                             \
        }                                                                                      \
        if (o && flush(k, s, out, (int64_t)o, err)) return -1;                                 \
        if (k->written != k->start[3]) return changed(s, err);                                 \
        return 0;                                                                              \
    }

DEFINE_MAP_TOKENS(map_tokens_u8, uint8_t)
DEFINE_MAP_TOKENS(map_tokens_u32, uint32_t)

/* ---------------------------------------------------------------------------------------- */
/* Output files */

/* Creates the temporary file of output `path` (atomic_file), so that a missing or unwritable
 * folder is reported before the input is read. */
static int create_output(AtomicFile *af, const char *path, const char *flag, CrnnError *err) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return crnn_fail(err, "%s is a folder; give a file name to %s", path, flag);
    if (atomic_file_create(af, path, err)) return crnn_fail_context(err, "%s", flag);
    return 0;
}

/* Reserves the output's space on its disk before HDF5 writes to it, so that a disk too full
 * for the file is an error here: HDF5 1.10 crashes at exit once it has failed to write a file
 * (even one the program never closes). File systems without fallocate go on without the
 * reservation. */
static int reserve_space(const char *path, int64_t bytes, CrnnError *err) {
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return crnn_fail(err, "cannot open %s: %s; check that the folder is writable", path,
                         strerror(errno));
    int rc;
    do rc = fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)bytes);
    while (rc < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    if (rc < 0 && (saved == ENOSPC || saved == EFBIG || saved == EDQUOT))
        return crnn_fail(err,
                         "cannot write %s: %s (it needs %.1f MB); free some space or give "
                         "--output_h5 a file on another disk",
                         path, strerror(saved), (double)bytes / 1e6);
    return 0;
}

static int write_encoding_attr(hid_t file, VocabEncoding enc) {
    const char *value = enc == VOCAB_BYTES ? "bytes" : "utf-8";
    hid_t type = H5Tcopy(H5T_C_S1);
    hid_t space = H5Screate(H5S_SCALAR);
    int rc = -1;
    if (type >= 0 && space >= 0 && H5Tset_size(type, H5T_VARIABLE) >= 0 &&
        H5Tset_cset(type, H5T_CSET_UTF8) >= 0) {
        hid_t attr = H5Acreate2(file, "encoding", type, space, H5P_DEFAULT, H5P_DEFAULT);
        if (attr >= 0) {
            if (H5Awrite(attr, type, &value) >= 0) rc = 0;
            H5Aclose(attr);
        }
    }
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Inputs that cannot be read twice, and an existing vocabulary */

/* Copies what is left of fd (a pipe) to an unnamed temporary file in $TMPDIR, or without TMPDIR
 * in the folder of output_h5, through buf [READ_BUF]; returns the new file's descriptor, read
 * from its start, or -1. The file has no name from the start, so it goes with the process. */
static int spool_input(int fd, const char *name, const char *output_h5, unsigned char *buf, CrnnError *err) {
    const char *tmpdir = getenv("TMPDIR");
    char *copy = NULL, *where;
    if (tmpdir && *tmpdir) {
        where = (char *)tmpdir;
    } else {
        copy = strdup(output_h5);
        if (!copy) return crnn_fail_nomem(err, "out of memory");
        where = dirname(copy);
    }
    size_t cap = strlen(where) + 40;
    char *path = malloc(cap);
    if (!path) {
        free(copy);
        return crnn_fail_nomem(err, "out of memory");
    }
    snprintf(path, cap, "%s/.crnn-preprocess-input-XXXXXX", where);
    int out = mkstemp(path);
    int rc = -1;
    if (out < 0) {
        crnn_fail(err, "cannot make a temporary file in %s for %s (read twice, so kept there while "
                       "preprocessing): %s; set TMPDIR to a writable folder",
                  where, name, strerror(errno));
        goto done;
    }
    unlink(path);
    for (;;) {
        ssize_t got = read(fd, buf, READ_BUF);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            crnn_fail(err, "cannot read %s: %s", name, strerror(errno));
            goto done;
        }
        if (got == 0) break;
        for (ssize_t put = 0; put < got;) {
            ssize_t n = write(out, buf + put, (size_t)(got - put));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                crnn_fail(err, "cannot copy %s to a temporary file in %s (read twice, so kept there while "
                               "preprocessing): %s; set TMPDIR to a folder with room for the text",
                          name, where, strerror(errno));
                goto done;
            }
            put += n;
        }
    }
    if (lseek(out, 0, SEEK_SET) != 0) {
        crnn_fail(err, "cannot reread the temporary copy of %s in %s: %s", name, where, strerror(errno));
        goto done;
    }
    rc = out;
done:
    if (rc < 0 && out >= 0) close(out);
    free(path);
    free(copy);
    return rc;
}

/* Reads --input_json and settles the encoding: the vocabulary's, or with only ASCII tokens
 * (which read the same either way) the user's. */
static int read_fixed_vocab(const PreprocessOptions *opt, Vocab *v, CrnnError *err) {
    if (vocab_read_json(v, opt->input_json, err)) return -1;
    int ascii = 1;
    for (int i = 0; i < v->size; i++) ascii &= v->tokens[i] < 128;
    if (ascii) {
        v->encoding = opt->encoding;
    } else if (opt->encoding_given && opt->encoding != v->encoding) {
        return crnn_fail_usage(err, "--encoding %s differs from the vocabulary %s, which is %s; drop --encoding",
                               opt->encoding == VOCAB_BYTES ? "bytes" : "utf-8", opt->input_json,
                               v->encoding == VOCAB_BYTES ? "bytes" : "utf-8");
    }
    return 0;
}

/* The characters of the text outside --input_json's vocabulary, each with the byte offset of
 * its first appearance. */
static int unknown_tokens_error(const PreprocessOptions *opt, const char *input, const Counts *c,
                                VocabEncoding enc, CrnnError *err) {
    char list[CRNN_ERROR_MAX / 2] = "";
    size_t used = 0;
    int shown = c->unknown < UNKNOWN_SHOWN ? c->unknown : UNKNOWN_SHOWN;
    for (int k = 0; k < shown && used < sizeof list; k++) {
        char d[48];
        vocab_describe_token(enc, c->unknown_token[k], d, sizeof d);
        int n = snprintf(list + used, sizeof list - used, "%s%s at byte %" PRId64, k ? ", " : "", d,
                         c->unknown_at[k]);
        if (n < 0) break;
        used += (size_t)n;
    }
    return crnn_fail_usage(err,
                           "%s: %d character%s not in the vocabulary %s: %s%s; nothing was written. Give a "
                           "text made of that vocabulary's characters, or leave out --input_json to make a "
                           "new vocabulary (a model trained on the old one cannot go on with it)",
                           input, c->unknown, c->unknown == 1 ? " is" : "s are", opt->input_json, list,
                           c->unknown > shown ? ", ..." : "");
}

/* ---------------------------------------------------------------------------------------- */

/* Opens the input (a file, or standard input) into src->fd and sets *spool when it is a pipe,
 * which is copied to a file before it is read twice. */
static int open_source(const PreprocessOptions *opt, int from_stdin, Source *src, int *spool,
                       CrnnError *err) {
    const char *input = src->path;
    src->fd = from_stdin ? dup(STDIN_FILENO) : open(opt->input_txt, O_RDONLY);
    if (src->fd < 0)
        return crnn_fail(err, "cannot open the input file %s: %s; check the path given to --input_txt",
                         input, strerror(errno));
    struct stat st;
    if (fstat(src->fd, &st) != 0)
        return crnn_fail(err, "cannot read %s: %s; check --input_txt", input, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return crnn_fail(err, "the input %s is a folder; give a text file to --input_txt", input);
    *spool = !S_ISREG(st.st_mode); /* a pipe: read it once, into a file read twice */
    if (!*spool && from_stdin) {    /* "< FILE": the text starts where stdin stands */
        src->origin = lseek(src->fd, 0, SEEK_CUR);
        if (src->origin < 0) src->origin = 0;
    }
#ifdef POSIX_FADV_SEQUENTIAL
    if (!*spool) posix_fadvise(src->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    return 0;
}

/* Allocates the read buffer and the token table; with an existing vocabulary (fixed) the table
 * starts as that vocabulary, in its order. */
static int alloc_counts(Source *src, Counts *counts, int fixed, const Vocab *vocab, CrnnError *err) {
    src->buf = crnn_malloc(READ_BUF, err);
    counts->map = crnn_calloc(CODE_POINTS, sizeof *counts->map, err);
    counts->tokens = crnn_malloc(CODE_POINTS * sizeof *counts->tokens, err);
    if (!src->buf || !counts->map || !counts->tokens) return -1;
    if (fixed) {
        for (int i = 0; i < vocab->size; i++) {
            counts->tokens[i] = vocab->tokens[i];
            counts->map[vocab->tokens[i]] = (uint32_t)i + 1;
        }
        counts->V = vocab->size;
        counts->fixed = 1;
    }
    return 0;
}

/* Replaces src's pipe with its copy in a temporary file (see spool_input). */
static int spool_source(Source *src, const char *output_h5, CrnnError *err) {
    int copy = spool_input(src->fd, src->path, output_h5, src->buf, err);
    if (copy < 0) return -1;
    close(src->fd);
    src->fd = copy;
    return 0;
}

/* Checks the counted text (known tokens, at least two) and splits it into train, val and test. */
static int plan_splits(const PreprocessOptions *opt, const char *input, const Counts *counts,
                       VocabEncoding enc, PreprocessSummary *sum, CrnnError *err) {
    if (counts->unknown) return unknown_tokens_error(opt, input, counts, enc, err);
    int64_t N = counts->N;
    if (N == 0)
        return crnn_fail(err, "the input %s is empty; give a text file with the training text", input);
    if (N < 2)
        return crnn_fail(err,
                         "the input %s holds a single character: nothing to learn (a model predicts "
                         "each character from the ones before it); give a longer text",
                         input);
    sum->vocab_size = counts->V;
    sum->total = N;
    sum->val_size = (int64_t)(opt->val_frac * (double)N);
    sum->test_size = (int64_t)(opt->test_frac * (double)N);
    sum->train_size = N - sum->val_size - sum->test_size;
    sum->elem_size = counts->V <= 255 ? 1 : 4;
    return 0;
}

/* Creates the HDF5 file *file at sink->path with its three datasets (into sink) and its encoding
 * attribute; its space is reserved before HDF5 writes any of it (and again once HDF5 has
 * truncated the file), see reserve_space. What was opened is left for the caller to close. */
static int create_h5(const PreprocessOptions *opt, const PreprocessSummary *sum, VocabEncoding enc,
                     Sink *sink, hid_t *file, CrnnError *err) {
    const char *h5_tmp = sink->path;
    int64_t h5_bytes = sum->total * sum->elem_size + (1 << 20); /* the tokens, and HDF5's structures */
    if (reserve_space(h5_tmp, h5_bytes, err)) return -1;
    *file = H5Fcreate(h5_tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (*file < 0)
        return crnn_fail_io(err, "cannot create the HDF5 file %s (for --output_h5 %s); check that the "
                                 "folder is writable", h5_tmp, opt->output_h5);
    if (reserve_space(h5_tmp, h5_bytes, err)) return -1;
    hid_t ftype = sum->elem_size == 1 ? H5T_STD_U8LE : H5T_STD_U32LE;
    sink->memtype = sum->elem_size == 1 ? H5T_NATIVE_UINT8 : H5T_NATIVE_UINT32;
    sink->elem = (size_t)sum->elem_size;
    const char *names[3] = {"train", "val", "test"};
    int64_t sizes[3] = {sum->train_size, sum->val_size, sum->test_size};
    sink->start[0] = 0;
    for (int s = 0; s < 3; s++) {
        sink->start[s + 1] = sink->start[s] + sizes[s];
        hsize_t dims = (hsize_t)sizes[s];
        hid_t space = H5Screate_simple(1, &dims, NULL);
        if (space >= 0) {
            sink->dset[s] = H5Dcreate2(*file, names[s], ftype, space, H5P_DEFAULT, H5P_DEFAULT,
                                       H5P_DEFAULT);
            H5Sclose(space);
        }
        if (sink->dset[s] < 0)
            return crnn_fail_io(err, "cannot create the dataset /%s in %s; check the free space of its disk",
                                names[s], h5_tmp);
    }
    if (write_encoding_attr(*file, enc))
        return crnn_fail_io(err, "cannot write the encoding attribute in %s", h5_tmp);
    return 0;
}

/* Closes the datasets and the HDF5 file, which is when HDF5 writes what it still holds. */
static int close_h5(Sink *sink, hid_t *file, CrnnError *err) {
    for (int s = 0; s < 3; s++) {
        herr_t c = H5Dclose(sink->dset[s]);
        sink->dset[s] = -1;
        if (c < 0)
            return crnn_fail_io(err, "cannot write %s; check the free space of its disk", sink->path);
    }
    herr_t closed = H5Fclose(*file);
    *file = -1;
    if (closed < 0)
        return crnn_fail_io(err, "cannot write %s; check the free space of its disk", sink->path);
    return 0;
}

/* Writes the vocabulary to the JSON output's temporary file. */
static int write_vocab_json(const Vocab *vocab, AtomicFile *json_out, CrnnError *err) {
    FILE *fp = atomic_file_stream(json_out, err);
    if (!fp) return -1;
    if (vocab_write_json_stream(vocab, fp))
        return crnn_fail_io(err, "cannot write %s: %s; check the free space of its disk", json_out->tmp,
                            strerror(errno));
    return 0;
}

int preprocess_run(const PreprocessOptions *opt, PreprocessSummary *summary, CrnnError *err) {
    if (preprocess_check_options(opt, err)) return -1;
    crnn_hdf5_quiet();

    int rc = -1;
    const int from_stdin = is_stdin(opt->input_txt), fixed = given(opt->input_json);
    /* with an existing vocabulary the JSON is its copy, unless none or the same file is asked for */
    const int write_json =
        !fixed || (given(opt->output_json) && !same_file(opt->input_json, opt->output_json));
    const char *input = from_stdin ? "standard input" : opt->input_txt; /* for messages */
    Source src = {.path = input, .fd = -1};
    Counts counts = {0};
    Sink sink = {.path = NULL, .dset = {-1, -1, -1}};
    Vocab vocab = {0};
    hid_t file = -1;
    void *out = NULL;
    AtomicFile h5_out = {.fd = -1}, json_out = {.fd = -1};
    int spool = 0;

    /* the input */
    if (open_source(opt, from_stdin, &src, &spool, err)) goto done;

    /* the vocabulary to encode with */
    if (fixed && read_fixed_vocab(opt, &vocab, err)) goto done;
    const VocabEncoding enc = fixed ? vocab.encoding : opt->encoding;

    /* the outputs' temporary files, before the long read */
    if (create_output(&h5_out, opt->output_h5, "--output_h5", err)) goto done;
    sink.path = h5_out.tmp;
    if (write_json && create_output(&json_out, opt->output_json, "--output_json", err)) goto done;

    if (alloc_counts(&src, &counts, fixed, &vocab, err)) goto done;
    if (spool && spool_source(&src, opt->output_h5, err)) goto done;

    /* pass 1 */
    if (count_tokens(&src, enc, &counts, err)) goto done;
    PreprocessSummary sum;
    if (plan_splits(opt, input, &counts, enc, &sum, err)) goto done;

    /* the HDF5 file and its datasets */
    if (create_h5(opt, &sum, enc, &sink, &file, err)) goto done;

    /* pass 2 */
    out = crnn_malloc((size_t)OUT_CHUNK * sink.elem, err);
    if (!out || source_rewind(&src, err)) goto done;
    if (sum.elem_size == 1 ? map_tokens_u8(&src, enc, counts.map, out, &sink, err)
                           : map_tokens_u32(&src, enc, counts.map, out, &sink, err))
        goto done;
    if (close_h5(&sink, &file, err)) goto done;

    /* the vocabulary (with --input_json, its copy) */
    if (!fixed && vocab_from_tokens(&vocab, enc, counts.tokens, counts.V, err)) goto done;
    if (write_json && write_vocab_json(&vocab, &json_out, err)) goto done;

    /* both complete and on the disk, then into place */
    if (atomic_file_sync(&h5_out, err) || (write_json && atomic_file_sync(&json_out, err))) goto done;
    if (atomic_file_commit(&h5_out, err)) goto done;
    if (write_json && atomic_file_commit(&json_out, err)) goto done;
    if (summary) *summary = sum;
    rc = 0;

done:
    for (int s = 0; s < 3; s++)
        if (sink.dset[s] >= 0) H5Dclose(sink.dset[s]);
    if (file >= 0) H5Fclose(file);
    atomic_file_abandon(&h5_out); /* nothing to do once committed */
    atomic_file_abandon(&json_out);
    if (src.fd >= 0) close(src.fd);
    free(src.buf);
    free(counts.map);
    free(counts.tokens);
    free(out);
    vocab_free(&vocab);
    return rc;
}
