# Read by cpack (CPACK_PROJECT_CONFIG_FILE, cmake/install.cmake): the Debian package is made from
# a CPU build only, whose dependencies are all Debian 12 packages.
if(CPACK_GENERATOR STREQUAL "DEB")
  if(CPACK_CRNN_CUDA)
    message(FATAL_ERROR "crnn: this build has the CUDA backend; the .deb is made from a CPU build, since Debian 12 has no CUDA 13 or NCCL packages: cmake -S . -B build-deb -DCRNN_CUDA=OFF && cmake --build build-deb -j2 && cd build-deb && cpack -G DEB")
  endif()
  if(CPACK_CRNN_SANITIZE)
    message(FATAL_ERROR "crnn: this is a sanitizer build (CRNN_SANITIZE), a test build: make the .deb from a plain -DCRNN_CUDA=OFF build")
  endif()
endif()
