# Run at every build (cmake -P): writes the build's identity for --version into OUT, touching it
# only when it changed. -D SRC (the checkout), OUT, VERSION, CUDA (how CUDA was built).
execute_process(COMMAND git -C "${SRC}" describe --always --dirty --abbrev=12
                OUTPUT_VARIABLE commit ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR commit STREQUAL "")
  set(commit "unknown")
endif()
set(text "/* written by cmake/build_info.cmake at build time */
#define CRNN_VERSION \"${VERSION}\"
#define CRNN_COMMIT \"${commit}\"
#define CRNN_BUILD_CUDA \"${CUDA}\"
")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
else()
  set(old "")
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
