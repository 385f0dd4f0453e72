#!/usr/bin/env bash
# Runs every libFuzzer target of a CRNN_FUZZ build for SECONDS each, one after another:
#   CC=clang cmake -S . -B build-fuzz -DCRNN_FUZZ=ON && cmake --build build-fuzz --target fuzzers
#   tests/fuzz/run_fuzzers.sh build-fuzz 60
# Corpora start from the seeds (tests/fuzz/seeds and tests/fuzz/make_seeds.sh) and grow in
# BUILD_DIR/fuzz-corpus/<target>, so that a later run goes on where one stopped. Fails on any
# crash, hang (-timeout), memory blow-up (-rss_limit_mb), leak or sanitizer report; the input
# that did it is saved in BUILD_DIR/fuzz-artifacts/<target>/ and its path printed. To keep a
# found bug fixed, copy that input to tests/fuzz/regressions/<target>/ (ctest replays it).
# A crash inside libhdf5 itself (not crnn's code) is reported as a note, its input kept as
# BUILD_DIR/fuzz-artifacts/<target>/hdf5-*, and the target goes on for the time left.
# Optional third argument: the targets to run (default: all), e.g. "json flags".
set -uo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS [TARGETS]" >&2
    exit 2
fi
build=$(cd "$1" && pwd) || exit 2
seconds=$2
targets=${3:-"vocab json data_h5 checkpoint flags"}
src=$(cd "$(dirname "$0")/../.." && pwd)
if [ ! -x "$build/fuzz/fuzz_vocab" ]; then
    echo "$0: no fuzzers in $build/fuzz; build them with" >&2
    echo "  CC=clang cmake -S . -B $1 -DCRNN_FUZZ=ON && cmake --build $1 --target fuzzers" >&2
    exit 2
fi
if ! "$src/tests/fuzz/make_seeds.sh" "$build" "$build/fuzz-seeds" >"$build/fuzz-seeds.log" 2>&1; then
    echo "$0: cannot make the seed files:" >&2
    cat "$build/fuzz-seeds.log" >&2
    exit 1
fi
supp=$src/tests/sanitizers
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:allocator_may_return_null=1:suppressions=$supp/asan.supp"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp"
# Whether a failed run's report is a bug inside libhdf5 itself on a hostile file (HDF5 1.10
# has known ones, e.g. in its global heap, and memcpy from a buffer whose huge allocation it
# never checked, or strdup of an attribute name a corrupt file did not end), not crnn's: the
# first frame of the report that is not the sanitizer's, libFuzzer's or libc's own (memcpy,
# strdup and the like, named by their glibc source, sysdeps/, or by ASan's interceptor of that
# name) is in libhdf5, and no memory involved was allocated by
# crnn's code (an HDF5 write past a buffer that crnn sized would be crnn's bug).
inside_hdf5() {
    local top
    top=$(sed -n '/^ *#0 /,/^$/p' "$1" | grep -E '^ *#[0-9]+ ' |
          grep -vE '__interceptor_|__sanitizer|__asan|__ubsan|fuzzer::|libc\.so|sysdeps/| in (malloc|calloc|realloc|free) ' |
          grep -vE ' in (strdup|strndup|strlen|strnlen|strcpy|strncpy|strcmp|strncmp|memcpy|memmove|memset|memcmp) \(' | head -1)
    [[ "$top" == *libhdf5* ]] || return 1
    ! sed -n '/allocated by thread/,/^$/p' "$1" | grep -q '/src/'
}

# Whether a failed run is libhdf5's fault (inside_hdf5). A blow-up of the process's memory
# (-rss_limit_mb) names no allocation, and what it lists is what was live at the end, not what
# grew: its input is run once more with -malloc_limit_mb, which stops at the first allocation
# over 512 MB and shows who asked for it (HDF5 1.10 sizes its vlen conversion buffer by a
# length the file claims, up to 4 GB, before it reads the data).
hdf5_fault() {
    inside_hdf5 "$2" && return 0
    grep -q "ERROR: libFuzzer: out-of-memory (used:" "$2" || return 1
    local input
    input=$(ls -t "$3"/oom-* 2>/dev/null | head -1)
    [ -n "$input" ] || return 1
    "$build/fuzz/fuzz_$1" -rss_limit_mb=16384 -malloc_limit_mb=512 "$input" >"$2.replay" 2>&1 && return 1
    grep -q "ERROR: libFuzzer: out-of-memory (malloc(" "$2.replay" && inside_hdf5 "$2.replay" || return 1
    cat "$2.replay" >>"$2"
}

failed=()
for t in $targets; do
    corpus=$build/fuzz-corpus/$t
    artifacts=$build/fuzz-artifacts/$t
    mkdir -p "$corpus" "$artifacts"
    seeds=()
    for d in "$src/tests/fuzz/seeds/$t" "$build/fuzz-seeds/$t" "$src/tests/fuzz/regressions/$t"; do
        [ -d "$d" ] && seeds+=("$d")
    done
    log=$build/fuzz-artifacts/$t.log
    echo "== fuzz_$t: ${seconds}s (log: $log)"
    start=$SECONDS
    while :; do
        left=$((seconds - (SECONDS - start)))
        [ $left -ge 1 ] || left=1
        "$build/fuzz/fuzz_$t" "$corpus" "${seeds[@]}" -max_total_time="$left" -timeout=10 \
            -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
            -artifact_prefix="$artifacts/" >"$log" 2>&1
        rc=$?
        [ $rc -ne 0 ] && hdf5_fault "$t" "$log" "$artifacts" || break
        # HDF5's bug, not crnn's: keep the input aside, say so, and go on fuzzing
        for f in "$artifacts"/crash-* "$artifacts"/timeout-* "$artifacts"/oom-*; do
            [ -e "$f" ] || continue
            mv "$f" "$artifacts/hdf5-$(basename "$f")"
            echo "note: fuzz_$t: a crash inside libhdf5 itself, not crnn's: $artifacts/hdf5-$(basename "$f")"
            grep -m3 -E "ERROR: |^ *#[0-9]+ .*libhdf5" "$log" | sed 's/^/    /'
        done
        [ $((SECONDS - start)) -lt $((seconds - 5)) ] || { rc=0; break; }
    done
    grep -E "^stat::number_of_executed_units|^#[0-9]+ *DONE" "$log" | tail -2
    if [ $rc -ne 0 ]; then
        echo "fuzz_$t FAILED (exit $rc after $((SECONDS - start))s); the end of its log:"
        tail -n 60 "$log"
        ls -1 "$artifacts" | sed "s|^|  input: $artifacts/|"
        failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing found problems in: ${failed[*]}"
    exit 1
fi
echo "fuzzing: no problem found in $seconds s per target"
