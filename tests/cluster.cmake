# crnn across hosts: an emulated cluster of network namespaces (tests/cluster/cluster.sh) and
# launch/crnn-launch's hostfile. The cases SKIP (exit 77) where namespaces cannot be made (not
# root, no iproute2) and in sanitizer builds; they hold the "mpi" and "slurm" locks (their jobs
# use both cores) and "cluster" (one emulated cluster at a time: fixed names and subnet).
foreach(case equivalence resume signals cutoff slow_link dry_run lock)
  add_test(NAME cluster_${case} COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_cluster.py ${case})
  set_tests_properties(cluster_${case} PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 400
                       SKIP_RETURN_CODE 77 RESOURCE_LOCK "cluster;slurm;mpi")
endforeach()
