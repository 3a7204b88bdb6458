#include "CByteChecks.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define HAS_AVX2_PATH 1
#endif

static inline _Bool in_alphabet(uint8_t c) {
    // Setting bit 0x20 turns A-Z into a-z; '+' (0x2B) and '/' (0x2F) are the bytes whose (c | 4)
    // is '/'.
    return ((uint8_t)((c | 0x20) - 'a') < 26) | ((uint8_t)(c - '0') < 10) | ((c | 4) == '/');
}

// Blocks of 32 without branches inside (vectorised for any target); bytes one by one only in the
// block that holds the answer.
static size_t alphabet_run_portable(const uint8_t *bytes, size_t count) {
    size_t i = 0;
    for (; i + 32 <= count; i += 32) {
        uint8_t outside = 0;
        for (size_t j = 0; j < 32; j++) outside |= !in_alphabet(bytes[i + j]);
        if (outside) break;
    }
    while (i < count && in_alphabet(bytes[i])) i++;
    return i;
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

// Per byte: 0xFF where the byte is of the alphabet, 0 elsewhere.
__attribute__((target("avx2"))) static inline __m256i alphabet_bytes(__m256i c) {
    __m256i letter = at_most(_mm256_sub_epi8(_mm256_or_si256(c, _mm256_set1_epi8(0x20)), _mm256_set1_epi8('a')), _mm256_set1_epi8(25));
    __m256i digit = at_most(_mm256_sub_epi8(c, _mm256_set1_epi8('0')), _mm256_set1_epi8(9));
    __m256i sign = _mm256_cmpeq_epi8(_mm256_or_si256(c, _mm256_set1_epi8(4)), _mm256_set1_epi8('/'));
    return _mm256_or_si256(_mm256_or_si256(letter, digit), sign);
}

__attribute__((target("avx2"))) static size_t alphabet_run_avx2(const uint8_t *bytes, size_t count) {
    size_t i = 0;
    // Four blocks to a test: a megabyte of base64 holds no byte outside, and each test is a branch.
    for (; i + 128 <= count; i += 128) {
        const __m256i *at = (const __m256i *)(bytes + i);
        __m256i valid = _mm256_and_si256(
            _mm256_and_si256(alphabet_bytes(_mm256_loadu_si256(at)), alphabet_bytes(_mm256_loadu_si256(at + 1))),
            _mm256_and_si256(alphabet_bytes(_mm256_loadu_si256(at + 2)), alphabet_bytes(_mm256_loadu_si256(at + 3))));
        if (_mm256_movemask_epi8(valid) != -1) break;
    }
    // The block that holds the first byte outside, or the last blocks.
    for (; i + 32 <= count; i += 32) {
        unsigned valid = (unsigned)_mm256_movemask_epi8(alphabet_bytes(_mm256_loadu_si256((const __m256i *)(bytes + i))));
        if (valid != 0xFFFFFFFFu) return i + (size_t)__builtin_ctz(~valid);
    }
    return i + alphabet_run_portable(bytes + i, count - i);
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

size_t cbytes_base64_alphabet_run(const uint8_t *bytes, size_t count) {
#ifdef HAS_AVX2_PATH
    if (has_avx2()) return alphabet_run_avx2(bytes, count);
#endif
    return alphabet_run_portable(bytes, count);
}

size_t cbytes_json_string_special(const uint8_t *bytes, size_t count, _Bool *non_ascii) {
#ifdef HAS_AVX2_PATH
    if (has_avx2()) return json_string_special_avx2(bytes, count, non_ascii);
#endif
    return json_string_special_portable(bytes, count, non_ascii);
}
