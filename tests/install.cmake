# crnn installed (cmake --install into a temporary prefix) and run from there with nothing of the
# build folder on the PATH: the programs end to end, crnn-launch and the man pages; and the
# installed slurm/cpu.sbatch under the local Slurm of tests/slurm/local_slurm.sh (SKIP, exit 77,
# when Slurm cannot run here; it holds the Slurm tests' locks). install_deb makes the .deb with
# cpack (no root; installing it is .ci/run's) and checks its files and that its Depends cover
# every library the programs link; a CUDA build must be refused. All SKIP in sanitizer builds.
add_test(NAME install_programs COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_install.py
         programs ${CMAKE_BINARY_DIR} ${CMAKE_COMMAND})
set_tests_properties(install_programs PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 300
                     SKIP_RETURN_CODE 77 RESOURCE_LOCK mpi)
add_test(NAME install_slurm COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_install.py
         slurm ${CMAKE_BINARY_DIR} ${CMAKE_COMMAND})
set_tests_properties(install_slurm PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 300
                     SKIP_RETURN_CODE 77 RESOURCE_LOCK "slurm;mpi;cluster")
add_test(NAME install_deb COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_install.py
         deb ${CMAKE_BINARY_DIR} ${CMAKE_COMMAND})
# RUN_SERIAL: cpack first builds the build's "all" (its preinstall step), which relinks the
# programs when the build identity changed since the last build (a commit, an edit: --dirty);
# no other test may be running them then
set_tests_properties(install_deb PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 300 SKIP_RETURN_CODE 77
                     RUN_SERIAL TRUE)
