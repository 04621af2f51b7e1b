// OpenBLAS's CBLAS interface. With pkg-config the include path is the openblas-pthread folder,
// whose cblas.h also declares openblas_set_num_threads / openblas_get_corename / _config.
#include <stddef.h>
#include <cblas.h>

// LAPACK's symmetric eigensolver (divide and conquer), which Debian's OpenBLAS carries; the
// Fortran calling convention: every argument by address, then the hidden lengths of the two
// character arguments.
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info,
             size_t jobz_length, size_t uplo_length);
