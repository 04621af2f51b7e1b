// Hints Swift has no spelling for: a software prefetch of a cache line, for loops that read
// rows at addresses the hardware prefetcher cannot predict (candidate rows by id), and a vector
// mask's lanes as the bits of an integer (a movemask); and a SIGBUS handler that needs the
// faulting address, which Swift's `signal` cannot give.
#ifndef SIMJOB_MEMORY_HINTS_H
#define SIMJOB_MEMORY_HINTS_H

static inline void simjob_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

// The lanes of a 16-lane comparison mask (each lane 0 or -1) as the bits of an integer: clang
// lowers the conversion to a bool vector and its bit cast to packs and one pmovmskb (7
// instructions on AVX2), where the same in Swift (weights, then a horizontal sum) took 30.
typedef int simjob_int16 __attribute__((ext_vector_type(16)));
typedef _Bool simjob_bool16 __attribute__((ext_vector_type(16)));

static inline unsigned simjob_lane_bits(simjob_int16 mask) {
    simjob_bool16 lanes = __builtin_convertvector(mask < 0, simjob_bool16);
    return __builtin_bit_cast(unsigned short, lanes);
}

// Hamming distances of `rows` codes of `words` 64-bit words each (row-major) to one query code
// (memory_hints.c): AVX-512 VPOPCNTQ two rows per instruction where the CPU has it, else the
// popcnt instruction row by row. Compiled apart (and without SLP vectorisation), because the
// compiler's own vectorisation of the loop (nibble lookups with pshufb, then horizontal sums)
// took about twice as long per row as popcnt.
void simjob_hamming_distances(const unsigned long long *codes, long rows, long words,
                              const unsigned long long *query, unsigned short *out);

// A set mapped from its file (FloatMatrix(mapping:)), for the SIGBUS handler (mapped_guard.c): an
// access to one of its pages after another program truncated the file calls `remove` (temporary
// outputs), writes `message` (one line, ending in a newline) to standard error and exits with
// status 1. A fault outside every registered mapping keeps the default action (a crash). The
// first registration installs the handler. Returns the slot, or -1 when all 256 are in use (the
// mapping is then unguarded).
int simjob_guard_register(const void *base, unsigned long length, const char *message, void (*remove)(void));
// Forgets the mapping that starts at `base`, before it is unmapped.
void simjob_guard_unregister(const void *base);

#endif
