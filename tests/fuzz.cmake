# The fuzz targets of tests/fuzz, one per thing crnn parses. Every build replays their seeds
# and the inputs that once found a bug (tests/fuzz/regressions/<target>/) through
# tests/fuzz/replay.c; with CRNN_FUZZ=ON (clang) they are also built as libFuzzer programs in
# <build>/fuzz, which tests/fuzz/run_fuzzers.sh runs (README "the tests").
set(CRNN_FUZZ_TARGETS vocab json data_h5 checkpoint flags)
set(fuzz_src ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
set(fuzz_programs)
foreach(t ${CRNN_FUZZ_TARGETS})
  add_executable(fuzz-replay-${t} ${fuzz_src}/fuzz_${t}.c ${fuzz_src}/replay.c)
  target_link_libraries(fuzz-replay-${t} PRIVATE crnn_io)
  set(inputs ${fuzz_src}/regressions/${t})
  if(EXISTS ${fuzz_src}/seeds/${t})
    list(APPEND inputs ${fuzz_src}/seeds/${t})
  endif()
  add_test(NAME fuzz_replay_${t} COMMAND fuzz-replay-${t} ${inputs})
  set_tests_properties(fuzz_replay_${t} PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 120)
  if(CRNN_FUZZ)
    add_executable(fuzz_${t} ${fuzz_src}/fuzz_${t}.c)
    target_link_libraries(fuzz_${t} PRIVATE crnn_io)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
    set_target_properties(fuzz_${t} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
    list(APPEND fuzz_programs fuzz_${t})
  endif()
endforeach()
if(CRNN_FUZZ)
  # what run_fuzzers.sh needs: the fuzzers, and the programs that make its seed files
  add_custom_target(fuzzers DEPENDS ${fuzz_programs} crnn-preprocess crnn-train)
endif()
