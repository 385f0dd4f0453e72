# Data-parallel training under mpirun (Open MPI; root needs OMPI_ALLOW_RUN_AS_ROOT, set in CRNN_TEST_ENV).
foreach(case np2_vs_np1 shared_memory shared_timeout resume sigusr1 sigkill validation_shared)
  add_test(NAME mpi_${case} COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_mpi.py ${case})
  set_tests_properties(mpi_${case} PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 600 RESOURCE_LOCK mpi)
endforeach()

# np=3 shards read with parallel HDF5 against a serial read
add_executable(test_dataset_mpi ${CMAKE_CURRENT_SOURCE_DIR}/test_dataset_mpi.c)
target_link_libraries(test_dataset_mpi PRIVATE crnn_io)
set_target_properties(test_dataset_mpi PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
add_test(NAME mpi_dataset_shards COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_mpi.py dataset_shards)
set_tests_properties(mpi_dataset_shards PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 300 RESOURCE_LOCK mpi)

# Open MPI's allreduce algorithm chosen per call (ring from 64 KB, tree below), read back through
# MPI_T; a user's own OMPI_MCA_coll_libnbc_iallreduce_algorithm left alone
add_executable(test_comm_algo ${CMAKE_CURRENT_SOURCE_DIR}/test_comm_algo.c)
target_link_libraries(test_comm_algo PRIVATE crnn_io)
set_target_properties(test_comm_algo PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
add_test(NAME mpi_comm_algorithm COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_mpi.py comm_algorithm)
set_tests_properties(mpi_comm_algorithm PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 300 RESOURCE_LOCK mpi)
