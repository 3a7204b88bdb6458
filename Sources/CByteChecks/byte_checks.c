#include "CByteChecks.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define HAS_AVX2_PATH 1
#endif

// One byte at a time, written without branches so that the compiler vectorises it for any target.
static _Bool alphabet_only_portable(const uint8_t *bytes, size_t count) {
    uint8_t outside = 0;
    for (size_t i = 0; i < count; i++) {
        uint8_t c = bytes[i];
        // Setting bit 0x20 turns A-Z into a-z; '+' (0x2B) and '/' (0x2F) are the bytes whose
        // (c | 4) is '/'.
        uint8_t letter = (uint8_t)((c | 0x20) - 'a') < 26;
        uint8_t digit = (uint8_t)(c - '0') < 10;
        uint8_t sign = (c | 4) == '/';
        outside |= (letter | digit | sign) ^ 1;
    }
    return outside == 0;
}

static _Bool any_below_portable(const uint8_t *bytes, size_t count, uint8_t limit) {
    uint8_t least = 0xFF;
    for (size_t i = 0; i < count; i++) least = bytes[i] < least ? bytes[i] : least;
    return count > 0 && least < limit;
}

#ifdef HAS_AVX2_PATH
// x <= bound, unsigned, per byte: min(x, bound) == x.
__attribute__((target("avx2"))) static inline __m256i at_most(__m256i x, __m256i bound) {
    return _mm256_cmpeq_epi8(_mm256_min_epu8(x, bound), x);
}

__attribute__((target("avx2"))) static _Bool alphabet_only_avx2(const uint8_t *bytes, size_t count) {
    const __m256i lower = _mm256_set1_epi8(0x20), a = _mm256_set1_epi8('a'), zero = _mm256_set1_epi8('0');
    const __m256i twentyFive = _mm256_set1_epi8(25), nine = _mm256_set1_epi8(9);
    const __m256i four = _mm256_set1_epi8(4), slash = _mm256_set1_epi8('/');
    __m256i valid = _mm256_set1_epi8((char)0xFF);
    size_t i = 0;
    for (; i + 32 <= count; i += 32) {
        __m256i c = _mm256_loadu_si256((const __m256i *)(bytes + i));
        __m256i letter = at_most(_mm256_sub_epi8(_mm256_or_si256(c, lower), a), twentyFive);
        __m256i digit = at_most(_mm256_sub_epi8(c, zero), nine);
        __m256i sign = _mm256_cmpeq_epi8(_mm256_or_si256(c, four), slash);
        valid = _mm256_and_si256(valid, _mm256_or_si256(_mm256_or_si256(letter, digit), sign));
    }
    return _mm256_movemask_epi8(valid) == -1 && alphabet_only_portable(bytes + i, count - i);
}

__attribute__((target("avx2"))) static _Bool any_below_avx2(const uint8_t *bytes, size_t count, uint8_t limit) {
    __m256i least = _mm256_set1_epi8((char)0xFF);
    size_t i = 0;
    for (; i + 32 <= count; i += 32) least = _mm256_min_epu8(least, _mm256_loadu_si256((const __m256i *)(bytes + i)));
    // Nothing below the limit: every lane is at least `limit`.
    _Bool below = _mm256_movemask_epi8(at_most(least, _mm256_set1_epi8((char)(limit - 1)))) != 0 && limit > 0;
    return below || any_below_portable(bytes + i, count - i, limit);
}

static _Bool has_avx2(void) {
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("avx2") ? 1 : 0;
    return known == 1;
}
#endif

_Bool cbytes_base64_alphabet_only(const uint8_t *bytes, size_t count) {
#ifdef HAS_AVX2_PATH
    if (has_avx2()) return alphabet_only_avx2(bytes, count);
#endif
    return alphabet_only_portable(bytes, count);
}

_Bool cbytes_any_below(const uint8_t *bytes, size_t count, uint8_t limit) {
#ifdef HAS_AVX2_PATH
    if (has_avx2()) return any_below_avx2(bytes, count, limit);
#endif
    return any_below_portable(bytes, count, limit);
}
