#ifndef C_BYTE_CHECKS_H
#define C_BYTE_CHECKS_H

#include <stddef.h>
#include <stdint.h>

/// Checks over the megabyte of base64 an image request carries, which a request makes more than
/// once. Swift's compiler vectorises such loops for the baseline x86-64 target only (16 bytes at a
/// time); these use AVX2 (32 at a time) where the processor has it, chosen once at run time.

/// The index of the first byte that is not one of the 64 characters of standard base64 (RFC 4648,
/// §4): A-Z, a-z, 0-9, '+' and '/' (padding is not); `count` when there is none.
size_t cbytes_base64_alphabet_run(const uint8_t *bytes, size_t count);

/// The index of the first byte that matters inside a JSON string: its closing quote, a backslash,
/// or a control character (below 0x20, which JSON forbids there); `count` when there is none.
/// Sets `*non_ascii` if a byte before that index is 0x80 or above (leaves it alone otherwise), so
/// that the same pass tells whether the string is ASCII.
size_t cbytes_json_string_special(const uint8_t *bytes, size_t count, _Bool *non_ascii);

#endif
