/*
 * The kernel's own cost of a delivered broadcast message on this machine: a C
 * program that does nothing but write one small message to each of N
 * loopback TCP connections per round, as a broadcast does, while a second
 * process (the receivers) drains them all through epoll. It prints the
 * sender's CPU time (user + system, getrusage) per message: the least that any
 * server, in any language, pays for a delivered message here.
 *
 * A benchmark, not a test, and not part of the package:
 *
 *   gcc -O2 -o /tmp/send_floor bench/send_floor.c
 *   /tmp/send_floor 1000 300 send          # N connections, rounds, mode
 *
 * Built with io_uring (Debian's liburing-dev), the "uring" mode submits each
 * round's sends in one io_uring_enter() instead of one send() each:
 *
 *   gcc -O2 -DWITH_URING -o /tmp/send_floor bench/send_floor.c -luring
 *   /tmp/send_floor 1000 300 uring
 *
 * N is bounded by the descriptor limit: two per connection.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef WITH_URING
#include <liburing.h>
#define RING_SIZE 4096
#endif

/* A frame of the size of the rig's broadcast message. */
#define MESSAGE_SIZE 48

static double
cpu_us(double *system)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    *system = r.ru_stime.tv_sec * 1e6 + r.ru_stime.tv_usec;
    return r.ru_utime.tv_sec * 1e6 + r.ru_utime.tv_usec + *system;
}

/* The receivers: read whatever arrives until the sender goes away (killed at
   the end, or with the sender if it dies first; a closed connection ends it). */
static void
drain(const int *fds, int n)
{
    struct epoll_event events[512];
    static char buf[65536];
    int ep;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1) {
        _exit(0);
    }
    ep = epoll_create1(0);

    for (int i = 0; i < n; i++) {
        struct epoll_event e = {.events = EPOLLIN, .data.fd = fds[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
    }
    for (;;) {
        int k = epoll_wait(ep, events, 512, -1);
        for (int j = 0; j < k; j++) {
            if (read(events[j].data.fd, buf, sizeof buf) <= 0) {
                _exit(0); /* the sender closed, or failed: nothing more to read */
            }
        }
    }
}

int
main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    int rounds = argc > 2 ? atoi(argv[2]) : 300;
    int uring = argc > 3 && strcmp(argv[3], "uring") == 0;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int *clients = calloc((size_t)n, sizeof(int)), *servers = calloc((size_t)n, sizeof(int));
    char message[MESSAGE_SIZE];
    long failed = 0;
    double sys0, sys1, cpu0, cpu1;
    pid_t child;
#ifdef WITH_URING
    struct io_uring ring;
#endif

#ifndef WITH_URING
    if (uring) {
        fprintf(stderr, "built without io_uring: compile with -DWITH_URING ... -luring\n");
        return 2;
    }
#endif
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 4096) < 0 ||
        getsockname(listener, (struct sockaddr *)&addr, &len) < 0) {
        perror("listen");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        int one = 1;
        clients[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (clients[i] < 0 || connect(clients[i], (struct sockaddr *)&addr, sizeof addr) < 0 ||
            (servers[i] = accept(listener, NULL, NULL)) < 0) {
            perror("connection (is N within the descriptor limit?)");
            return 1;
        }
        /* As every WebSocket server does: small frames leave at once. */
        setsockopt(servers[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    child = fork();
    if (child == 0) {
        drain(clients, n);
        return 0;
    }
    memset(message, 'x', sizeof message);
#ifdef WITH_URING
    if (uring && io_uring_queue_init(RING_SIZE, &ring, 0) < 0) {
        fprintf(stderr, "io_uring is not available here\n");
        kill(child, SIGKILL);
        return 1;
    }
#endif
    usleep(100000);
    cpu0 = cpu_us(&sys0);
    for (int r = 0; r < rounds; r++) {
        if (!uring) {
            for (int i = 0; i < n; i++) {
                if (send(servers[i], message, sizeof message, MSG_DONTWAIT | MSG_NOSIGNAL) !=
                    (ssize_t)sizeof message) {
                    failed++;
                }
            }
        }
#ifdef WITH_URING
        else {
            for (int first = 0; first < n; first += RING_SIZE) {
                int count = n - first < RING_SIZE ? n - first : RING_SIZE;
                struct io_uring_cqe *cqe;
                unsigned head, seen = 0;

                for (int j = 0; j < count; j++) {
                    io_uring_prep_send(io_uring_get_sqe(&ring), servers[first + j], message,
                                       sizeof message, MSG_DONTWAIT | MSG_NOSIGNAL);
                }
                io_uring_submit_and_wait(&ring, (unsigned)count);
                io_uring_for_each_cqe(&ring, head, cqe)
                {
                    if (cqe->res != (int)sizeof message) {
                        failed++;
                    }
                    seen++;
                }
                io_uring_cq_advance(&ring, seen);
            }
        }
#endif
        /* The receivers catch up between rounds; sleeping costs no CPU. */
        usleep(2000);
    }
    cpu1 = cpu_us(&sys1);
    printf("%s n=%d: %.2f us of CPU per message (system %.2f), %ld not sent whole\n",
           uring ? "uring" : "send", n, (cpu1 - cpu0) / ((double)n * rounds),
           (sys1 - sys0) / ((double)n * rounds), failed);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 0;
}
