#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H

#include <openssl/ssl.h>
#include <openssl/err.h>

/// The server context's settings, here because Swift cannot import OpenSSL's function-like macros:
/// TLS 1.2 at least; no renegotiation (a client could make the server work at will); a peer that
/// closes without close_notify ends the stream like one that sends it (many HTTP clients do, and
/// HTTP's own framing tells a cut answer); writes may complete record by record, from a buffer
/// that moves between retries (the output queue gathers its pending bytes afresh each time); an
/// idle connection gives its buffers back (thousands of kept-alive connections).
static inline int copenssl_configure_server(SSL_CTX *context) {
    if (SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) != 1) return 0;
    SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    return 1;
}

#endif
