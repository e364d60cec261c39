/* The reference: a minimal single-threaded epoll echo server in C, the
 * practical limit of one core. TCP and UDP on one port number, loopback only.
 * Level-triggered, non-blocking, one 64 KiB buffer for everything; a client
 * whose reply does not fit its socket buffer gets the rest written when it
 * becomes writable (kept in a per-connection heap buffer only then).
 *   usage: epoll_echo PORT   (0: any; prints "tcp PORT udp PORT" when ready)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct pending { char *data; size_t len, off; };
static struct pending *pend;
static int max_fd = 1 << 20;
static char buf[65536];

static void die(const char *what) { perror(what); exit(1); }

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    int port = argc > 1 ? atoi(argv[1]) : 0;
    pend = calloc((size_t)max_fd, sizeof *pend);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 4096)) die("tcp");
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    int ufd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (bind(ufd, (struct sockaddr *)&a, sizeof a)) die("udp");
    printf("tcp %d udp %d\n", ntohs(a.sin_port), ntohs(a.sin_port));
    fflush(stdout);

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.fd = ufd;
    epoll_ctl(ep, EPOLL_CTL_ADD, ufd, &ev);
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (c >= max_fd) { close(c); continue; }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
            } else if (fd == ufd) {
                struct sockaddr_in from;
                for (int k = 0; k < 64; ++k) {
                    socklen_t fl = sizeof from;
                    ssize_t r = recvfrom(ufd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
                    if (r < 0) break;
                    sendto(ufd, buf, (size_t)r, 0, (struct sockaddr *)&from, fl);
                }
            } else if (events[i].events & EPOLLOUT) {
                struct pending *p = &pend[fd];
                ssize_t w = send(fd, p->data + p->off, p->len - p->off, 0);
                if (w < 0 && errno != EAGAIN) goto close_it;
                if (w > 0) p->off += (size_t)w;
                if (p->off == p->len) {
                    free(p->data);
                    memset(p, 0, sizeof *p);
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = fd};
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ce);
                }
            } else {
                ssize_t r = recv(fd, buf, sizeof buf, 0);
                if (r <= 0) {
                    if (r < 0 && errno == EAGAIN) continue;
                    goto close_it;
                }
                ssize_t w = send(fd, buf, (size_t)r, 0);
                if (w < 0 && errno != EAGAIN) goto close_it;
                if (w < 0) w = 0;
                if (w < r) { /* the client is slow: keep the rest, stop reading until it is written */
                    struct pending *p = &pend[fd];
                    p->len = (size_t)(r - w);
                    p->off = 0;
                    p->data = malloc(p->len);
                    memcpy(p->data, buf + w, p->len);
                    struct epoll_event ce = {.events = EPOLLOUT, .data.fd = fd};
                    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ce);
                }
            }
            continue;
        close_it:
            free(pend[fd].data);
            memset(&pend[fd], 0, sizeof pend[fd]);
            close(fd);
        }
    }
}
