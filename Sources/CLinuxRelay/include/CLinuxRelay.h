// epoll, accept4 and splice(2) for Swift without their headers (Glibc's module map lacks
// <sys/epoll.h>, and splice/accept4 need _GNU_SOURCE, which clashes with the other modules'
// view of the system headers). Plain types only; the implementation is in CLinuxRelay.c.
#ifndef C_LINUX_RELAY_H
#define C_LINUX_RELAY_H

enum {
    C_LINUX_RELAY_IN = 0x001,     // EPOLLIN
    C_LINUX_RELAY_OUT = 0x004,    // EPOLLOUT
    C_LINUX_RELAY_ERR = 0x008,    // EPOLLERR
    C_LINUX_RELAY_HUP = 0x010,    // EPOLLHUP
    C_LINUX_RELAY_ADD = 1,        // EPOLL_CTL_ADD
    C_LINUX_RELAY_DEL = 2,        // EPOLL_CTL_DEL
    C_LINUX_RELAY_MOD = 3,        // EPOLL_CTL_MOD
};

/// epoll_create1(EPOLL_CLOEXEC).
int c_linux_relay_epoll_create(void);
/// epoll_ctl with the file descriptor as the event's data.
int c_linux_relay_epoll_ctl(int epoll, int operation, int fd, unsigned int events);
/// epoll_wait into two arrays (descriptors and their events); returns the count or -1.
int c_linux_relay_epoll_wait(int epoll, int *fds, unsigned int *events, int capacity, int timeout);
/// accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC).
int c_linux_relay_accept(int fd);
/// splice(from, NULL, to, NULL, length, SPLICE_F_MOVE | SPLICE_F_NONBLOCK).
long c_linux_relay_splice(int from, int to, unsigned long length);
/// pipe2(fds, O_NONBLOCK | O_CLOEXEC).
int c_linux_relay_pipe(int fds[2]);
/// sched_setaffinity(0, …) to the one CPU `cpu` (threads and processes started afterwards inherit it).
int c_linux_relay_pin_to_cpu(int cpu);

#endif
