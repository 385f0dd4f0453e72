# The tutorials' commands as written (torch-rnn's README and char-rnn's -data_dir way), with
# their default 50 epochs on a small text (test_tutorial.py).
foreach(case torchrnn charrnn)
  add_test(NAME tutorial_${case} COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_tutorial.py ${case})
  set_tests_properties(tutorial_${case} PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 900)
endforeach()
