# The CUDA backend and NCCL against the CPU backend (tests/test_backend_cuda.c), and the
# programs' -gpu handling (tests/test_cuda_cli.py). Without a device (or without CUDA in the
# build) the GPU tests exit 77 and count as skipped; cuda_cli_fallback runs everywhere: where
# there is no device it is exactly the path a user takes.
# AddressSanitizer must leave its shadow gap unprotected for the CUDA driver's mappings
string(REPLACE "ASAN_OPTIONS=" "ASAN_OPTIONS=protect_shadow_gap=0:" CRNN_CUDA_TEST_ENV "${CRNN_TEST_ENV}")
if(CRNN_CUDA_EMULATED) # CUDA on tests/cuemu: the tests may ask it for more devices
  list(APPEND CRNN_CUDA_TEST_ENV "CRNN_CUDA_EMULATED=1")
endif()
add_executable(test_backend_cuda ${CMAKE_CURRENT_SOURCE_DIR}/test_backend_cuda.c)
target_link_libraries(test_backend_cuda PRIVATE crnn)
if(TARGET crnn_cuda) # it drives the backend directly, not through the programs' module
  target_link_libraries(test_backend_cuda PRIVATE crnn_cuda)
endif()
# emulated, every kernel of the backend's tests also runs a second time in reverse thread and
# block order, and a result that changes is a race (tests/cuemu/README.md)
set(CRNN_CUDA_KERNEL_TEST_ENV ${CRNN_CUDA_TEST_ENV})
if(CRNN_CUDA_EMULATED)
  list(APPEND CRNN_CUDA_KERNEL_TEST_ENV "CUEMU_RACECHECK=1")
endif()
# the emulation with its race check under ASan, on a shared 2-core machine: cuda_train ran past
# 600 s once while other work took a core
foreach(group ops dropout train greedy nccl)
  add_test(NAME cuda_${group} COMMAND test_backend_cuda ${group})
  set_tests_properties(cuda_${group} PROPERTIES ENVIRONMENT "${CRNN_CUDA_KERNEL_TEST_ENV}" SKIP_RETURN_CODE 77 TIMEOUT 1200)
endforeach()
foreach(case fallback module checkpoint device_failure comm_timeout)
  add_test(NAME cuda_cli_${case} COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_cuda_cli.py ${case})
  set_tests_properties(cuda_cli_${case} PROPERTIES ENVIRONMENT "${CRNN_CUDA_TEST_ENV}" SKIP_RETURN_CODE 77 TIMEOUT 600)
endforeach()
