# The atomic file writer every module writes through (src/atomic_file.c), mkdir -p, the best
# model's link, and the error kinds (src/error.c).
add_executable(test_atomic_file ${CMAKE_CURRENT_SOURCE_DIR}/test_atomic_file.c)
target_link_libraries(test_atomic_file PRIVATE crnn_io)
add_test(NAME atomic_file COMMAND test_atomic_file)
