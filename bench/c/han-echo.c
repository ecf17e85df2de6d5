/*
 * han-echo: the yardstick for scripts/bench-han. A minimal epoll echo server on a Unix stream
 * socket: every byte read goes straight back, nothing is parsed. It shares no code with smetsd or
 * with the smetsbench client, so the client's rounds/s against it are what the kernel, the socket
 * and the client loop cost on this machine with a server that does no work.
 *
 *     han-echo PATH [THREADS]      THREADS defaults to the number of online CPUs
 *
 * Prints "ready" on stdout once it is listening. The main thread accepts and hands each connection
 * to a worker round robin; each worker has its own epoll set (level triggered, non-blocking
 * sockets). A connection whose peer does not read its echo keeps the unsent bytes and stops being
 * read until they are gone, so memory stays bounded by one buffer per connection.
 *
 * Built by scripts/bench-han with `cc -O2 -pthread`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum { BUFFER_BYTES = 64 * 1024, MAX_EVENTS = 64 };

struct connection {
    int fd;
    size_t pending_from; /* unsent echo: buffer[pending_from..<pending_to] */
    size_t pending_to;
    unsigned char buffer[BUFFER_BYTES];
};

static void drop(int epoll_fd, struct connection *connection) {
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, connection->fd, NULL);
    close(connection->fd);
    free(connection);
}

/* Sends what is pending; 1 when all of it went, 0 when the socket is full, -1 on error. */
static int flush_pending(struct connection *connection) {
    while (connection->pending_from < connection->pending_to) {
        ssize_t sent = send(connection->fd, connection->buffer + connection->pending_from,
                            connection->pending_to - connection->pending_from, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) continue;
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        }
        connection->pending_from += (size_t)sent;
    }
    connection->pending_from = connection->pending_to = 0;
    return 1;
}

static int watch(int epoll_fd, struct connection *connection, uint32_t events) {
    struct epoll_event event = {.events = events, .data.ptr = connection};
    return epoll_ctl(epoll_fd, EPOLL_CTL_MOD, connection->fd, &event);
}

/* Handles one readiness event; returns 0 to keep the connection, -1 to drop it. */
static int serve(int epoll_fd, struct connection *connection, uint32_t events) {
    if (events & EPOLLOUT) {
        int flushed = flush_pending(connection);
        if (flushed < 0) return -1;
        if (flushed == 0) return 0;
        if (watch(epoll_fd, connection, EPOLLIN) != 0) return -1;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return 0;
    for (;;) {
        ssize_t got = recv(connection->fd, connection->buffer, BUFFER_BYTES, 0);
        if (got == 0) return -1;
        if (got < 0) {
            if (errno == EINTR) continue;
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        }
        connection->pending_from = 0;
        connection->pending_to = (size_t)got;
        int flushed = flush_pending(connection);
        if (flushed < 0) return -1;
        if (flushed == 0) return watch(epoll_fd, connection, EPOLLOUT);
        if ((size_t)got < BUFFER_BYTES) return 0; /* level triggered: more wakes us again */
    }
}

static void *worker(void *argument) {
    int epoll_fd = *(int *)argument;
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int ready = epoll_wait(epoll_fd, events, MAX_EVENTS, -1);
        if (ready < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            exit(1);
        }
        for (int index = 0; index < ready; index++) {
            struct connection *connection = events[index].data.ptr;
            if (serve(epoll_fd, connection, events[index].events) != 0) drop(epoll_fd, connection);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: han-echo PATH [THREADS]\n");
        return 2;
    }
    const char *path = argv[1];
    long threads = argc == 3 ? strtol(argv[2], NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1 || threads > 256) {
        fprintf(stderr, "han-echo: THREADS must be 1...256\n");
        return 2;
    }
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof address.sun_path) {
        fprintf(stderr, "han-echo: socket path too long\n");
        return 2;
    }
    strcpy(address.sun_path, path);
    signal(SIGPIPE, SIG_IGN);

    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(path);
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 1024) != 0) {
        perror("han-echo: listen");
        return 1;
    }
    int *epolls = calloc((size_t)threads, sizeof *epolls);
    if (epolls == NULL) return 1;
    for (long index = 0; index < threads; index++) {
        pthread_t thread;
        epolls[index] = epoll_create1(EPOLL_CLOEXEC);
        if (epolls[index] < 0 || pthread_create(&thread, NULL, worker, &epolls[index]) != 0) {
            perror("han-echo: worker");
            return 1;
        }
        pthread_detach(thread);
    }
    printf("ready\n");
    fflush(stdout);

    for (unsigned long next = 0;; next++) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE) { /* out of descriptors: wait for a close */
                usleep(1000);
                continue;
            }
            perror("han-echo: accept");
            return 1;
        }
        struct connection *connection = malloc(sizeof *connection);
        if (connection == NULL) {
            close(fd);
            continue;
        }
        connection->fd = fd;
        connection->pending_from = connection->pending_to = 0;
        struct epoll_event event = {.events = EPOLLIN, .data.ptr = connection};
        if (epoll_ctl(epolls[next % (unsigned long)threads], EPOLL_CTL_ADD, fd, &event) != 0) {
            close(fd);
            free(connection);
        }
    }
}
