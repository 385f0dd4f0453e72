# Fault injection (tests/fault/test_fault.py): a disk that fills up, files cut short or
# removed, allocations of crnn's own code that fail, numbers that go wrong. The two LD_PRELOAD
# shims (failalloc: fails the N-th allocation made by crnn's code; faultfs: writes under a
# folder fail with ENOSPC after a budget) replace libc functions, which AddressSanitizer owns:
# with CRNN_SANITIZE they are not built and the cases that need them are skipped.
if(NOT CRNN_SANITIZE)
  foreach(shim failalloc faultfs)
    add_library(crnn_${shim} SHARED ${CMAKE_CURRENT_SOURCE_DIR}/fault/${shim}.c)
    target_link_libraries(crnn_${shim} PRIVATE ${CMAKE_DL_LIBS})
    set_target_properties(crnn_${shim} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
  endforeach()
endif()
# resume_nomem: -resume auto and every allocation of the resume failing in turn: the run stops
# with the out-of-memory error instead of falling back to an older checkpoint (an older one is
# taken only when a newer one is corrupt).
foreach(case disk_full read_fail alloc numbers resume_nomem)
  add_test(NAME fault_${case} COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/fault/test_fault.py ${case})
  set_tests_properties(fault_${case} PROPERTIES ENVIRONMENT "${CRNN_TEST_ENV}" TIMEOUT 300
                       SKIP_RETURN_CODE 77)
endforeach()
# alloc fails each of a few hundred allocations in turn, one run each: 80 to 140 s alone on two
# cores, more when other tests share them
set_tests_properties(fault_alloc fault_resume_nomem PROPERTIES TIMEOUT 900)
