# crnn-preprocess and the vocabulary: unit tests of src/io/vocab.c, parity with torch-rnn's
# preprocess.py rules (a numpy/h5py reference), and bad inputs.
add_executable(test_vocab ${CMAKE_CURRENT_SOURCE_DIR}/test_vocab.c)
target_link_libraries(test_vocab PRIVATE crnn_io)
add_test(NAME vocab COMMAND test_vocab)

add_test(NAME preprocess_parity
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_preprocess.py parity)
add_test(NAME preprocess_bad_input
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_preprocess.py bad_input)
add_test(NAME preprocess_stdin
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_preprocess.py stdin)
add_test(NAME preprocess_input_json
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_preprocess.py input_json)
set_tests_properties(preprocess_parity preprocess_bad_input preprocess_stdin preprocess_input_json PROPERTIES
                     ENVIRONMENT "${CRNN_TEST_ENV}")
