# char-rnn's and torch-rnn's workflows in crnn-train: -data_dir, their checkpoint names,
# -grad_clip_mode norm, crnn-inspect, -num_samples, an RMSprop resume, --help and --version
# (test_workflow.py).
foreach(case data_dir charrnn_names best_torchrnn_names clip_norm inspect num_samples rmsprop_resume help version)
  add_test(NAME workflow_${case} COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_workflow.py ${case})
  set_tests_properties(workflow_${case} PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 600)
endforeach()
