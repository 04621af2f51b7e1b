// Memory hints Swift has no spelling for: a software prefetch of a cache line, for loops that
// read rows at addresses the hardware prefetcher cannot predict (candidate rows by id).
#ifndef SIMJOB_MEMORY_HINTS_H
#define SIMJOB_MEMORY_HINTS_H

static inline void simjob_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

#endif
