// OpenBLAS's CBLAS interface. With pkg-config the include path is the openblas-pthread folder,
// whose cblas.h also declares openblas_set_num_threads / openblas_get_corename / _config.
#include <cblas.h>
