# The launcher and the Slurm batch scripts (slurm/) under a real Slurm started on this machine by
# tests/slurm/local_slurm.sh (Debian's slurm-wlm and munge, see launch/deps.sh). The cases that
# need Slurm SKIP (exit 77) when it cannot start here, and in sanitizer builds. They hold the
# "mpi" lock too: their jobs use both cores, as the mpirun tests do.
foreach(case world_check launcher requeue_logic lock_retry cpu gpu_scripts preempt preempt_mpirun sweep multinode preempt_multinode scaling)
  add_test(NAME slurm_${case} COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_slurm.py ${case})
  set_tests_properties(slurm_${case} PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 300
                       SKIP_RETURN_CODE 77 RESOURCE_LOCK "slurm;mpi;cluster")
endforeach()
