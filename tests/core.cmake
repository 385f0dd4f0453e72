# The math: finite differences in double precision.
add_executable(test_gradcheck ${CMAKE_CURRENT_SOURCE_DIR}/test_gradcheck.c)
target_link_libraries(test_gradcheck PRIVATE crnn64)
add_test(NAME gradcheck COMMAND test_gradcheck)

# The gradient dump that tests/test_parity.py compares with PyTorch, in float and in double.
add_executable(crnn-test-grads ${CMAKE_CURRENT_SOURCE_DIR}/grad_dump.c)
target_link_libraries(crnn-test-grads PRIVATE crnn)
add_executable(crnn-test-grads64 ${CMAKE_CURRENT_SOURCE_DIR}/grad_dump.c)
target_link_libraries(crnn-test-grads64 PRIVATE crnn64)
set_target_properties(crnn-test-grads crnn-test-grads64 PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})

# The float kernels per instruction set, and the threaded recurrence against one thread.
add_executable(test_backend ${CMAKE_CURRENT_SOURCE_DIR}/test_backend.c)
target_link_libraries(test_backend PRIVATE crnn)
# realloc wrapped: the backend without memory for its packed weights
target_link_options(test_backend PRIVATE -Wl,--wrap=realloc)
add_test(NAME backend COMMAND test_backend)

# The flag parser: typo suggestions, char-rnn/torch-rnn hints, switches, usage errors.
add_executable(test_flags ${CMAKE_CURRENT_SOURCE_DIR}/test_flags.c)
target_link_libraries(test_flags PRIVATE crnn_io)
add_test(NAME flags COMMAND test_flags)
