# char-rnn's workflow in crnn-train, and the optimizer's clipping.
foreach(case data_dir charrnn_names best_torchrnn_names clip_norm inspect num_samples rmsprop_resume help version)
  add_test(NAME workflow_${case} COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_workflow.py ${case})
  set_tests_properties(workflow_${case} PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 600)
endforeach()
add_executable(test_optim ${CMAKE_CURRENT_SOURCE_DIR}/test_optim.c)
target_link_libraries(test_optim PRIVATE crnn)
add_test(NAME optim COMMAND test_optim)

# RMSprop, norm clipping and char-rnn's schedule against torch.optim and clip_grad_norm_
add_test(NAME parity_optimizers COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_optim_parity.py)
set_tests_properties(parity_optimizers PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 600 LABELS parity)

# The tutorials' commands as written (torch-rnn's README and char-rnn's -data_dir way), with
# their default 50 epochs on a small text
foreach(case torchrnn charrnn)
  add_test(NAME tutorial_${case} COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_tutorial.py ${case})
  set_tests_properties(tutorial_${case} PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 900)
endforeach()
