"""A TLS 1.3 client that asks for key updates and never reads: each update the server must answer
with one of its own, which, once the socket is full, it cannot send.

Usage: tls_key_updates.py PORT COUNT. Sends one request, then COUNT key updates, prints "sent",
and keeps the connection open until it is killed. Python's ssl module has no key update, so
libssl is called directly.
"""

import ctypes
import socket
import sys
import time

libssl = ctypes.CDLL("libssl.so.3")
libssl.TLS_client_method.restype = ctypes.c_void_p
libssl.SSL_CTX_new.restype = ctypes.c_void_p
libssl.SSL_CTX_new.argtypes = [ctypes.c_void_p]
libssl.SSL_new.restype = ctypes.c_void_p
libssl.SSL_new.argtypes = [ctypes.c_void_p]
libssl.SSL_set_fd.argtypes = [ctypes.c_void_p, ctypes.c_int]
libssl.SSL_connect.argtypes = [ctypes.c_void_p]
libssl.SSL_write.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
libssl.SSL_key_update.argtypes = [ctypes.c_void_p, ctypes.c_int]
libssl.SSL_do_handshake.argtypes = [ctypes.c_void_p]

port, count = int(sys.argv[1]), int(sys.argv[2])
connection = socket.socket()
connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
connection.connect(("127.0.0.1", port))
session = libssl.SSL_new(libssl.SSL_CTX_new(libssl.TLS_client_method()))
libssl.SSL_set_fd(session, connection.fileno())
assert libssl.SSL_connect(session) == 1, "handshake"
request = b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n"
assert libssl.SSL_write(session, request, len(request)) == len(request)
UPDATE_REQUESTED = 1
for _ in range(count):
    assert libssl.SSL_key_update(session, UPDATE_REQUESTED) == 1
    assert libssl.SSL_do_handshake(session) == 1
print("sent", flush=True)
time.sleep(600)
