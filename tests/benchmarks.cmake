# The scaling benchmark's tools (benchmarks/): scaling.sh on this machine with a tiny model, its
# report from metrics files, and project_scaling.py's fit, validation and projection on
# made-up measurements with known answers; big_corpus.sh at 4 MB with a small model; the scripts
# that train on a corpus take it from CRNN_CORPUS only (corpus); cpu_train.sh's oneDNN peer,
# benchmarks/onednn_peer.c, built and run tiny, its output and gradients against PyTorch's
# (onednn_peer; skipped where libdnnl-dev is not installed), and cpu_train.sh itself with a tiny
# model (cpu_train_small); benchmarks/gemm_kernel.c built and its products checked against
# OpenBLAS on small shapes (gemm_kernel). The cases that run mpirun hold the "mpi" lock.
foreach(case fit validate project report scaling_local big_corpus_small corpus onednn_peer cpu_train_small gemm_kernel)
  add_test(NAME benchmarks_${case} COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_benchmarks.py ${case})
  set_tests_properties(benchmarks_${case} PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 300)
endforeach()
set_tests_properties(benchmarks_scaling_local benchmarks_big_corpus_small benchmarks_cpu_train_small
                     PROPERTIES RESOURCE_LOCK mpi)
set_tests_properties(benchmarks_onednn_peer PROPERTIES SKIP_RETURN_CODE 77)
# time_to_quality.sh on a small text with tiny models (crnn under mpirun, and the PyTorch reference)
add_test(NAME benchmarks_time_to_quality COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_benchmarks.py time_to_quality)
set_tests_properties(benchmarks_time_to_quality PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 300
                     SKIP_RETURN_CODE 77 RESOURCE_LOCK mpi)
