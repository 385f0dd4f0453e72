# The generator: Philox4x32-10 against Random123's published known answers and its own
# implementation (Debian's librandom123-dev, header only).
find_path(RANDOM123_INCLUDE_DIR Random123/philox.h)
if(RANDOM123_INCLUDE_DIR)
  add_executable(test_philox ${CMAKE_CURRENT_SOURCE_DIR}/test_philox.c)
  target_include_directories(test_philox PRIVATE ${RANDOM123_INCLUDE_DIR})
  target_link_libraries(test_philox PRIVATE crnn)
  add_test(NAME philox_known_answers COMMAND test_philox)
else()
  message(FATAL_ERROR "tests need Random123's headers (Debian: librandom123-dev; launch/deps.sh installs it)")
endif()
