# Installing crnn, its man pages and its Debian package (included by CMakeLists.txt).
#
#   cmake --install build --prefix P     (P defaults to /usr/local)
#   cd build-deb && cpack -G DEB         (from a -DCRNN_CUDA=OFF build: crnn_<version>_<arch>.deb)
#
# The layout (docs/DESIGN.md): P/bin holds the six programs and crnn-launch;
# P/share/crnn/slurm the Slurm scripts and P/share/crnn/configs the presets;
# P/share/doc/crnn the README and docs/*.md; P/share/man/man1 a page per program, made at
# build time by help2man from the program's --help. The installed Slurm scripts find the
# programs in ../../bin from share/crnn (slurm/common.sh), and crnn-launch beside itself.

set(CRNN_PROGRAMS preprocess train sample eval plot inspect)
# The programs link only system libraries and install without a RUNPATH. A CUDA build's module
# (libcrnn-cuda.so, which the programs load from ../lib/crnn when a run asks for a GPU) keeps the
# CUDA toolkit's and NCCL's folders (NCCL_ROOT may be outside the loader's paths) as its RUNPATH.
foreach(prog ${CRNN_PROGRAMS})
  install(TARGETS crnn-${prog} RUNTIME DESTINATION bin)
endforeach()
if(TARGET crnn_cuda_module)
  get_filename_component(crnn_nccl_dir "${NCCL_LIBRARY}" DIRECTORY)
  set(crnn_module_rpath ${CUDAToolkit_LIBRARY_DIR} ${crnn_nccl_dir})
  list(REMOVE_DUPLICATES crnn_module_rpath)
  install(TARGETS crnn_cuda_module LIBRARY DESTINATION lib/crnn)
  set_target_properties(crnn_cuda_module PROPERTIES INSTALL_RPATH "${crnn_module_rpath}")
endif()
install(PROGRAMS launch/crnn-launch DESTINATION bin)
# scaling.sbatch runs benchmarks/scaling.sh of a checkout: it stays there
install(DIRECTORY slurm/ DESTINATION share/crnn/slurm USE_SOURCE_PERMISSIONS
        PATTERN scaling.sbatch EXCLUDE)
install(DIRECTORY configs/ DESTINATION share/crnn/configs FILES_MATCHING PATTERN "*.conf")
install(FILES README.md DESTINATION share/doc/crnn)
install(DIRECTORY docs/ DESTINATION share/doc/crnn FILES_MATCHING PATTERN "*.md")

# Man pages: help2man runs each program with --help and --version (through cmake/man_help.sh,
# which lets help2man see the usage line); --help stays the one source of the flags' text.
set(crnn_man_preprocess "turn a text file into training data (HDF5) and a vocabulary (JSON)")
set(crnn_man_train "train a character-level recurrent language model")
set(crnn_man_sample "write text from a crnn-train checkpoint")
set(crnn_man_eval "print the loss of a checkpoint on a split of the data")
set(crnn_man_plot "draw the loss and speed curves of a training run or a scaling benchmark")
set(crnn_man_inspect "print a checkpoint's model, flags, iteration and loss history")
find_program(HELP2MAN_EXECUTABLE help2man)
if(CRNN_SANITIZE)
  message(STATUS "crnn: no man pages in sanitizer builds (a test build, not for installing)")
elseif(NOT HELP2MAN_EXECUTABLE)
  message(STATUS "crnn: help2man not found: no man pages (Debian: apt-get install help2man; launch/deps.sh installs it)")
else()
  set(crnn_man_pages)
  foreach(prog ${CRNN_PROGRAMS})
    set(page ${CMAKE_BINARY_DIR}/man/crnn-${prog}.1)
    add_custom_command(OUTPUT ${page}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
      COMMAND ${CMAKE_COMMAND} -E env CRNN_MAN_PROGRAM=$<TARGET_FILE:crnn-${prog}>
              ${HELP2MAN_EXECUTABLE} --no-info --section=1 "--name=${crnn_man_${prog}}"
              "--source=crnn ${PROJECT_VERSION}"
              --output=${page} ${CMAKE_CURRENT_SOURCE_DIR}/cmake/man_help.sh
      DEPENDS crnn-${prog} ${CMAKE_CURRENT_SOURCE_DIR}/cmake/man_help.sh
      COMMENT "man page of crnn-${prog} (help2man)" VERBATIM)
    list(APPEND crnn_man_pages ${page})
  endforeach()
  add_custom_target(crnn_man ALL DEPENDS ${crnn_man_pages})
  install(FILES ${crnn_man_pages} DESTINATION share/man/man1)
endif()

# The Debian package: a CPU build (-DCRNN_CUDA=OFF; Debian 12 has no CUDA 13 or NCCL packages)
# installed to /usr, depending on Debian 12's runtime packages of what the programs link
# (libmpi, libhdf5_openmpi, libopenblas, libjansson), mpirun and gnuplot (crnn-plot's PNG).
set(CRNN_DEB_MAINTAINER "crnn maintainers <maintainers@crnn.invalid>" CACHE STRING
    "the Maintainer field of the Debian package (cpack -G DEB)")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME crnn)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "character-level recurrent language models (char-rnn, torch-rnn) in C")
set(CPACK_PACKAGE_DESCRIPTION
"crnn trains character-level recurrent language models (LSTM, GRU, RNN) on a body
of text and writes new text in its style, as char-rnn and torch-rnn do, with their
flags, defaults and file formats. Training runs on the CPU (OpenBLAS) and across
MPI ranks (Open MPI) with parallel HDF5 data and checkpoints; crnn-launch and the
Slurm batch scripts in /usr/share/crnn/slurm start it on clusters.
This package is built without the CUDA backend.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CRNN_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libc6, libopenmpi3, openmpi-bin, libhdf5-openmpi-103-1, libopenblas0-pthread | libopenblas0, libjansson4, gnuplot-nox | gnuplot")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "slurm-client, python3")
# what cmake/cpack_project.cmake checks when cpack runs
set(CPACK_CRNN_CUDA "${CRNN_HAVE_CUDA}")
set(CPACK_CRNN_SANITIZE "${CRNN_SANITIZE}")
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_CURRENT_SOURCE_DIR}/cmake/cpack_project.cmake)
include(CPack)
