# The command lines: the flag parser (flags: typo suggestions, char-rnn/torch-rnn hints,
# switches, usage errors), and crnn-train, crnn-sample and crnn-eval end to end (cli_*: resume,
# signals, the run lock, metrics, progress, exit statuses, bad input; test_cli.py).
add_executable(test_flags ${CMAKE_CURRENT_SOURCE_DIR}/test_flags.c)
target_link_libraries(test_flags PRIVATE crnn_io)
add_test(NAME flags COMMAND test_flags)

foreach(case end_to_end cells onehot resume_exact signal lock bad_input nonfinite init_from metrics advice presets progress
             time_resume sample_every advice_plateau typo exit_status quiet start_text_file precision)
  add_test(NAME cli_${case} COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_cli.py ${case})
  set_tests_properties(cli_${case} PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 600)
endforeach()

# The underfitting advice's decision (train_advice_underfitting), as a function of the
# validation losses and the training loss.
add_executable(test_train_advice ${CMAKE_CURRENT_SOURCE_DIR}/test_train_advice.c)
target_link_libraries(test_train_advice PRIVATE crnn)
add_test(NAME train_advice COMMAND test_train_advice)
