#ifndef CZLIB_SHIM_H
#define CZLIB_SHIM_H

#include <zlib.h>

/// deflateInit2 is a macro, which Swift cannot call: this starts a gzip stream (RFC 1952: window
/// bits 15, plus 16 for the gzip wrapper) at `level` with `strategy`, with zlib's default memory.
static inline int czlib_deflate_init_gzip(z_streamp stream, int level, int strategy) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, strategy);
}

#endif
