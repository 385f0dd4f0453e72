# A checkpoint written before the restructuring resumes with the losses it printed then
# (tests/data/resume_golden; test_golden.py).
add_test(NAME resume_golden COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_golden.py)
set_tests_properties(resume_golden PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 300)
