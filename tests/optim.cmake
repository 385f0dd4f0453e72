# The optimizers and clipping over flat buffers (src/model/optim.c) against direct formulas. Their
# parity with torch.optim through crnn-train is parity_optimizers, in parity.cmake.
add_executable(test_optim ${CMAKE_CURRENT_SOURCE_DIR}/test_optim.c)
target_link_libraries(test_optim PRIVATE crnn)
add_test(NAME optim COMMAND test_optim)
