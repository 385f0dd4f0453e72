# The math on the CPU: the model's gradients against finite differences in double precision
# (gradcheck: every cell, embedded and one-hot input, dropout), and the float kernels per
# instruction set against plain references, the threaded recurrences against one thread
# (backend), and -precision bf16: the rounding, packing and products of every instruction set and
# the bf16 backend against references on the rounded operands (backend_bf16). The CUDA
# backend's equivalents are in cuda.cmake.
add_executable(test_gradcheck ${CMAKE_CURRENT_SOURCE_DIR}/test_gradcheck.c)
target_link_libraries(test_gradcheck PRIVATE crnn64)
add_test(NAME gradcheck COMMAND test_gradcheck)

add_executable(test_backend ${CMAKE_CURRENT_SOURCE_DIR}/test_backend.c)
target_link_libraries(test_backend PRIVATE crnn)
# realloc wrapped: the backend without memory for its packed weights
target_link_options(test_backend PRIVATE -Wl,--wrap=realloc)
add_test(NAME backend COMMAND test_backend)
add_executable(test_bf16 ${CMAKE_CURRENT_SOURCE_DIR}/test_bf16.c)
target_link_libraries(test_bf16 PRIVATE crnn)
add_test(NAME backend_bf16 COMMAND test_bf16)
