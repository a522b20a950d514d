#define _GNU_SOURCE
#include "CLinuxRelay.h"
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

int c_linux_relay_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int c_linux_relay_epoll_ctl(int epoll, int operation, int fd, unsigned int events) {
    struct epoll_event event = { .events = events, .data = { .fd = fd } };
    return epoll_ctl(epoll, operation, fd, &event);
}

int c_linux_relay_epoll_wait(int epoll, int *fds, unsigned int *events, int capacity, int timeout) {
    struct epoll_event ready[64];
    if (capacity > 64) capacity = 64;
    int count = epoll_wait(epoll, ready, capacity, timeout);
    for (int i = 0; i < count; i++) {
        fds[i] = ready[i].data.fd;
        events[i] = ready[i].events;
    }
    return count;
}

int c_linux_relay_accept(int fd) { return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }

long c_linux_relay_splice(int from, int to, unsigned long length) {
    return (long)splice(from, NULL, to, NULL, (size_t)length, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

int c_linux_relay_pipe(int fds[2]) { return pipe2(fds, O_NONBLOCK | O_CLOEXEC); }

int c_linux_relay_pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set);
}
