// The hints are static inline functions of the header; this file only makes the target a
// C library SwiftPM can build, and holds the one function that must be compiled on its own.
#include "memory_hints.h"

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f,avx512vpopcntdq")))
static void hamming4_avx512(const unsigned long long *codes, long rows, const unsigned long long *q, unsigned short *out) {
    const __m512i query = _mm512_set_epi64((long long)q[3], (long long)q[2], (long long)q[1], (long long)q[0],
                                           (long long)q[3], (long long)q[2], (long long)q[1], (long long)q[0]);
    long row = 0;
    for (; row + 2 <= rows; row += 2) {
        __m512i counts = _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512((const void *)(codes + 4 * row)), query));
        // Lanes 0-3 are row `row`'s four words, lanes 4-7 the next row's.
        const __m256i low = _mm512_castsi512_si256(counts), high = _mm512_extracti64x4_epi64(counts, 1);
        const __m256i pairs = _mm256_add_epi64(_mm256_unpacklo_epi64(low, high), _mm256_unpackhi_epi64(low, high));
        // pairs: (row w0+w1, next w0+w1, row w2+w3, next w2+w3)
        const __m128i sums = _mm_add_epi64(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256(pairs, 1));
        out[row] = (unsigned short)_mm_cvtsi128_si64(sums);
        out[row + 1] = (unsigned short)_mm_extract_epi64(sums, 1);
    }
    for (; row < rows; row++) {
        const unsigned long long *p = codes + 4 * row;
        out[row] = (unsigned short)(_mm_popcnt_u64(p[0] ^ q[0]) + _mm_popcnt_u64(p[1] ^ q[1]) + _mm_popcnt_u64(p[2] ^ q[2]) + _mm_popcnt_u64(p[3] ^ q[3]));
    }
}

__attribute__((target("popcnt")))
static void hamming_popcnt(const unsigned long long *codes, long rows, long words, const unsigned long long *query, unsigned short *out) {
    if (words == 4) {
        const unsigned long long q0 = query[0], q1 = query[1], q2 = query[2], q3 = query[3];
        for (long row = 0; row < rows; row++) {
            const unsigned long long *p = codes + 4 * row;
            out[row] = (unsigned short)(__builtin_popcountll(p[0] ^ q0) + __builtin_popcountll(p[1] ^ q1)
                                        + __builtin_popcountll(p[2] ^ q2) + __builtin_popcountll(p[3] ^ q3));
        }
        return;
    }
    for (long row = 0; row < rows; row++) {
        const unsigned long long *p = codes + words * row;
        int h = 0;
        for (long w = 0; w < words; w++) h += __builtin_popcountll(p[w] ^ query[w]);
        out[row] = (unsigned short)h;
    }
}

void simjob_hamming_distances(const unsigned long long *codes, long rows, long words, const unsigned long long *query, unsigned short *out) {
    static int vectorPopcount = -1;
    if (vectorPopcount < 0) {
        __builtin_cpu_init();
        vectorPopcount = __builtin_cpu_supports("avx512vpopcntdq") ? 1 : 0;
    }
    if (words == 4 && vectorPopcount) {
        hamming4_avx512(codes, rows, query, out);
    } else {
        hamming_popcnt(codes, rows, words, query, out);
    }
}
#else
void simjob_hamming_distances(const unsigned long long *codes, long rows, long words, const unsigned long long *query, unsigned short *out) {
    for (long row = 0; row < rows; row++) {
        int h = 0;
        for (long w = 0; w < words; w++) h += __builtin_popcountll(codes[words * row + w] ^ query[w]);
        out[row] = (unsigned short)h;
    }
}
#endif
