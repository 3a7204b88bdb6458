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

static inline _Bool json_string_special_byte(uint8_t c) { return c == '"' || c == '\\' || c < 0x20; }

// Blocks of 32 without branches inside (vectorised for any target); bytes one by one only in the
// block that holds the answer.
static size_t json_string_special_portable(const uint8_t *bytes, size_t count, _Bool *non_ascii) {
    size_t i = 0;
    uint8_t all = 0;
    for (; i + 32 <= count; i += 32) {
        uint8_t found = 0, block = 0;
        for (size_t j = 0; j < 32; j++) {
            found |= json_string_special_byte(bytes[i + j]);
            block |= bytes[i + j];
        }
        if (found) break;
        all |= block;
    }
    for (; i < count && !json_string_special_byte(bytes[i]); i++) all |= bytes[i];
    *non_ascii |= (all & 0x80) != 0;
    return i;
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

__attribute__((target("avx2"))) static size_t json_string_special_avx2(const uint8_t *bytes, size_t count, _Bool *non_ascii) {
    const __m256i quote = _mm256_set1_epi8('"'), backslash = _mm256_set1_epi8('\\'), control = _mm256_set1_epi8(0x1F);
    __m256i seen = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= count; i += 32) {
        __m256i c = _mm256_loadu_si256((const __m256i *)(bytes + i));
        __m256i special = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(c, quote), _mm256_cmpeq_epi8(c, backslash)),
                                          at_most(c, control));
        unsigned mask = (unsigned)_mm256_movemask_epi8(special);
        if (mask != 0) {
            unsigned at = (unsigned)__builtin_ctz(mask);
            // Only the bytes before the special one count; a byte's top bit is its movemask bit.
            unsigned high = (unsigned)_mm256_movemask_epi8(c) & ((1u << at) - 1);
            *non_ascii |= high != 0 || _mm256_movemask_epi8(seen) != 0;
            return i + at;
        }
        seen = _mm256_or_si256(seen, c);
    }
    *non_ascii |= _mm256_movemask_epi8(seen) != 0;
    return i + json_string_special_portable(bytes + i, count - i, non_ascii);
}

// A load and a bit test: the processor's features are read once, at start-up, by the runtime.
static _Bool has_avx2(void) { return __builtin_cpu_supports("avx2"); }
#endif

_Bool cbytes_base64_alphabet_only(const uint8_t *bytes, size_t count) {
#ifdef HAS_AVX2_PATH
    if (has_avx2()) return alphabet_only_avx2(bytes, count);
#endif
    return alphabet_only_portable(bytes, count);
}

size_t cbytes_json_string_special(const uint8_t *bytes, size_t count, _Bool *non_ascii) {
#ifdef HAS_AVX2_PATH
    if (has_avx2()) return json_string_special_avx2(bytes, count, non_ascii);
#endif
    return json_string_special_portable(bytes, count, non_ascii);
}
