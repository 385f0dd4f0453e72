# The HDF5 files: the preprocessed data (dataset) and checkpoints (checkpoint), both linked
# against crnn_io only.
add_executable(test_dataset ${CMAKE_CURRENT_SOURCE_DIR}/test_dataset.c)
target_link_libraries(test_dataset PRIVATE crnn_io)
add_test(NAME dataset COMMAND test_dataset)
set_tests_properties(dataset PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 120)

add_executable(test_checkpoint ${CMAKE_CURRENT_SOURCE_DIR}/test_checkpoint.c)
target_link_libraries(test_checkpoint PRIVATE crnn_io)
add_test(NAME checkpoint COMMAND test_checkpoint)
set_tests_properties(checkpoint PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 300)

# h5py reads what crnn writes (docs/FORMATS.md section 4), and crnn reads what h5py writes.
add_test(NAME checkpoint_h5py
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_checkpoint_h5py.py
                 $<TARGET_FILE:test_checkpoint>)
set_tests_properties(checkpoint_h5py PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 120)

# The atomic file writer every module writes through (src/io/atomic_file.c), mkdir -p, the best
# model's link, and the error kinds (src/base/error.c).
add_executable(test_atomic_file ${CMAKE_CURRENT_SOURCE_DIR}/test_atomic_file.c)
target_link_libraries(test_atomic_file PRIVATE crnn_io)
add_test(NAME atomic_file COMMAND test_atomic_file)
