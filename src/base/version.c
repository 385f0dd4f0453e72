/* The build's identity (see version.h). The version, commit and CUDA mode come from the build
 * (cmake/build_info.cmake); the libraries report their own versions at run time, so the text
 * names the ones actually loaded. */
#include "crnn/version.h"

#include <cblas.h>
#include <hdf5.h>
#include <mpi.h>
#include <string.h>

#include "crnn_build_info.h"

/* the library part: "CUDA off; float; OpenBLAS ...; Open MPI ...; HDF5 ..." */
static const char *libraries(void) {
    static char text[512];
    if (text[0]) return text;
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING] = "MPI ?";
    int len = 0;
    if (MPI_Get_library_version(mpi, &len) != MPI_SUCCESS) snprintf(mpi, sizeof mpi, "MPI ?");
    mpi[strcspn(mpi, ",\n")] = '\0'; /* its first clause: "Open MPI v4.1.4" */
    unsigned major = 0, minor = 0, release = 0;
    H5get_libversion(&major, &minor, &release);
    const char *blas = openblas_get_config();
    snprintf(text, sizeof text, "%s; float; %s; %s; HDF5 %u.%u.%u", CRNN_BUILD_CUDA, blas ? blas : "OpenBLAS ?", mpi,
             major, minor, release);
    return text;
}

const char *crnn_version_text(void) {
    static char text[640];
    if (!text[0]) snprintf(text, sizeof text, "crnn %s (commit %s); %s", CRNN_VERSION, CRNN_COMMIT, libraries());
    return text;
}

void crnn_version_print(FILE *f, const char *program) {
    fprintf(f, "%s %s (commit %s)\nbuilt with: %s\n", program, CRNN_VERSION, CRNN_COMMIT, libraries());
}
