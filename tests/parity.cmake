# Parity with the independent PyTorch reference (tests/torch_reference.py): preprocessing,
# gradients (float32 and double builds), 10 Adam steps, greedy sampling, evaluation; parity_gru
# and parity_rnn run the gradients, training and sampling checks for -model_type gru and rnn
# against nn.GRU and nn.RNN; parity_onehot, parity_onehot_gru and parity_onehot_rnn the same with
# -wordvec_size 0 (one-hot input, F.one_hot into input_size V; parity_onehot adds eval);
# parity_dropout trains every cell with -dropout against masks from the reference's own Philox;
# parity_bf16 the gradients of every cell with -precision bf16 against the equations with
# bf16-rounded operands in every product (torch_reference.py bf16_matmul);
# parity_optimizers: RMSprop, norm clipping and char-rnn's schedule against torch.optim and
# clip_grad_norm_ (test_optim_parity.py). Needs /usr/bin/python3 with python3-torch,
# python3-h5py and python3-numpy.

# The gradient dump (tests/grad_dump.c) that test_parity.py compares with PyTorch, in float and
# in double.
add_executable(crnn-test-grads ${CMAKE_CURRENT_SOURCE_DIR}/grad_dump.c)
target_link_libraries(crnn-test-grads PRIVATE crnn)
add_executable(crnn-test-grads64 ${CMAKE_CURRENT_SOURCE_DIR}/grad_dump.c)
target_link_libraries(crnn-test-grads64 PRIVATE crnn64)
set_target_properties(crnn-test-grads crnn-test-grads64 PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})

set(CRNN_PARITY_CHECKS preprocess grads grads64 train sample eval gru rnn onehot onehot_gru
    onehot_rnn dropout bf16)
foreach(check ${CRNN_PARITY_CHECKS})
  add_test(NAME parity_${check}
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_parity.py ${check})
  set_tests_properties(parity_${check} PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 600
                       LABELS parity)
endforeach()
add_test(NAME parity_reference_selftest
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/torch_reference.py selftest)
set_tests_properties(parity_reference_selftest PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}"
                     LABELS parity)
add_test(NAME parity_optimizers COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_optim_parity.py)
set_tests_properties(parity_optimizers PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 600 LABELS parity)
