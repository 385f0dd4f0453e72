# -resume auto and a failed allocation (tests/fault/test_fault.py resume_nomem): the run stops
# with the out-of-memory error instead of falling back to an older checkpoint: train.c's
# find_resume_checkpoint skips a checkpoint only when its error is CRNN_ERR_CORRUPT.
add_test(NAME fault_resume_nomem
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/fault/test_fault.py resume_nomem)
set_tests_properties(fault_resume_nomem PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 600
                     SKIP_RETURN_CODE 77)
