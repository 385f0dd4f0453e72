# ctest's sanitizer_reports (CRNN_SANITIZE=ON): fails, printing them, if any sanitized process
# of the run wrote a report into DIR (ASAN_OPTIONS/UBSAN_OPTIONS log_path, tests/CMakeLists.txt).
file(GLOB reports "${DIR}/report*")
if(reports)
  list(LENGTH reports n)
  set(text "")
  foreach(r ${reports})
    file(READ ${r} body)
    string(APPEND text "==== ${r}\n${body}\n")
  endforeach()
  message(FATAL_ERROR "${n} sanitizer report(s) in ${DIR}:\n${text}")
endif()
message(STATUS "no sanitizer reports in ${DIR}")
