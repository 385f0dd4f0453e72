# Data-parallel training under mpirun (Open MPI; root needs OMPI_ALLOW_RUN_AS_ROOT, set in CRNN_TEST_ENV).
foreach(case np2_vs_np1 resume sigusr1 sigkill)
  add_test(NAME mpi_${case} COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_mpi.py ${case})
  set_tests_properties(mpi_${case} PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 600 RESOURCE_LOCK mpi)
endforeach()
