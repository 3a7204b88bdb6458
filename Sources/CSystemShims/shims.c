#define _GNU_SOURCE
#include <pthread.h>
#include <sys/socket.h>
#include "CSystemShims.h"

int csystem_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return accept4(fd, address, length, flags);
}

void csystem_name_thread(const char *name) {
    pthread_setname_np(pthread_self(), name);
}
