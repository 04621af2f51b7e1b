// oneDNN's C API (Debian's libdnnl-dev, oneDNN 2.6), for its int8 matrix multiplication.
// Debian builds oneDNN on OpenMP: every primitive runs on as many OpenMP threads as the calling
// thread's setting allows. simjob's engine owns its threads (one Dispatch worker per core), so
// each worker limits its own OpenMP setting to one thread before it multiplies.
#include <oneapi/dnnl/dnnl.h>

void omp_set_num_threads(int count);
