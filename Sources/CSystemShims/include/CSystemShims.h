#ifndef C_SYSTEM_SHIMS_H
#define C_SYSTEM_SHIMS_H

#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <malloc.h>
#include <sys/auxv.h>

/// <sys/epoll.h> and <sys/eventfd.h> are included for the event loop, <malloc.h> for mallopt(3),
/// <sys/auxv.h> for getauxval(3) (where the binary was loaded): Swift's Glibc module exports none
/// of them.

/// accept4(2) is a GNU extension that Swift's Glibc module does not export; accepting with
/// SOCK_NONBLOCK | SOCK_CLOEXEC in one call saves two fcntl(2) calls per connection.
int csystem_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);

/// Names the calling thread for `top -H` and profilers (a GNU extension too); a name over 15
/// bytes is refused and the thread stays unnamed.
void csystem_name_thread(const char *name);

#endif
