// coserve-bench-tls: the TLS load generator of scripts/bench. One thread,
// epoll (edge-triggered), non-blocking sockets and OpenSSL, loopback only;
// every mode stops by itself and prints one line of `key=value` figures,
// including its own CPU time. The server's certificate is not verified: the
// point is the cost of the server's side.
//
//   coserve-bench-tls handshake --port P --conns C --seconds T
//       C concurrent loops of connect, full TLS 1.3 handshake (no session
//       resumption), close; handshakes per second.
//   coserve-bench-tls pingpong --port P --conns C --size S --seconds T
//       C TLS connections (TLS 1.3), one message of S bytes in flight on each.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "coserve-bench-tls: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

std::map<std::string, std::string> args;
long arg(const std::string& k, long def) { return args.count(k) ? std::stol(args[k]) : def; }

double cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int open_nonblocking(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) die("connect");
    return fd;
}

SSL_CTX* client_context() {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);  // every handshake a full one
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return ctx;
}

struct Conn {
    int fd = -1;
    SSL* ssl = nullptr;
    bool ready = false;  // handshake done
    std::size_t got = 0;
};

void open_conn(Conn& c, SSL_CTX* ctx, int port, int epfd, std::uint64_t id) {
    c.fd = open_nonblocking(port);
    c.ssl = SSL_new(ctx);
    SSL_set_fd(c.ssl, c.fd);
    SSL_set_connect_state(c.ssl);
    c.ready = false;
    c.got = 0;
    epoll_event e{};
    e.events = EPOLLIN | EPOLLOUT | EPOLLET;
    e.data.u64 = id;
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, c.fd, &e) != 0) die("epoll_ctl");
}

void close_conn(Conn& c) {
    SSL_shutdown(c.ssl);  // our close_notify, not waiting for theirs
    SSL_free(c.ssl);
    ::close(c.fd);  // also leaves the epoll set
    c.ssl = nullptr;
    c.fd = -1;
}

// Drives the handshake: true once done; false while it waits for the socket.
bool handshake_step(Conn& c) {
    const int r = SSL_do_handshake(c.ssl);
    if (r == 1) return c.ready = true;
    const int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return false;
    std::fprintf(stderr, "coserve-bench-tls: handshake failed: %s\n", ERR_reason_error_string(ERR_get_error()));
    std::exit(1);
}

void write_all(Conn& c, const std::string& msg) {
    const int w = SSL_write(c.ssl, msg.data(), static_cast<int>(msg.size()));
    if (w != static_cast<int>(msg.size())) die("SSL_write (a message did not fit the socket)");
}

int handshakes() {
    const int port = static_cast<int>(arg("port", 0)), conns = static_cast<int>(arg("conns", 16));
    const double seconds = static_cast<double>(arg("seconds", 5));
    SSL_CTX* ctx = client_context();
    const int epfd = ::epoll_create1(0);
    std::vector<Conn> cs(static_cast<std::size_t>(conns));
    const double cpu0 = cpu_seconds();
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    for (std::size_t i = 0; i < cs.size(); ++i) open_conn(cs[i], ctx, port, epfd, i);
    std::uint64_t done = 0;
    std::vector<epoll_event> ev(256);
    while (Clock::now() < end) {
        const int n = ::epoll_wait(epfd, ev.data(), static_cast<int>(ev.size()), 100);
        for (int i = 0; i < n; ++i) {
            Conn& c = cs[ev[static_cast<std::size_t>(i)].data.u64];
            if (!handshake_step(c)) continue;
            ++done;
            close_conn(c);
            open_conn(c, ctx, port, epfd, ev[static_cast<std::size_t>(i)].data.u64);
            handshake_step(c);
        }
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("mode=handshake conns=%d seconds=%.2f messages=%llu rate=%.0f client_cpu_s=%.3f\n", conns, elapsed,
                static_cast<unsigned long long>(done), static_cast<double>(done) / elapsed, cpu_seconds() - cpu0);
    for (auto& c : cs)
        if (c.ssl) close_conn(c);
    SSL_CTX_free(ctx);
    return 0;
}

int pingpong() {
    const int port = static_cast<int>(arg("port", 0)), conns = static_cast<int>(arg("conns", 100));
    const auto size = static_cast<std::size_t>(arg("size", 64));
    const double seconds = static_cast<double>(arg("seconds", 5));
    SSL_CTX* ctx = client_context();
    const int epfd = ::epoll_create1(0);
    std::vector<Conn> cs(static_cast<std::size_t>(conns));
    for (std::size_t i = 0; i < cs.size(); ++i) open_conn(cs[i], ctx, port, epfd, i);
    // Every handshake first, then the measured part.
    std::vector<epoll_event> ev(1024);
    for (std::size_t ready = 0; ready < cs.size();) {
        const int n = ::epoll_wait(epfd, ev.data(), static_cast<int>(ev.size()), 1000);
        if (n == 0) die("handshakes did not finish");
        for (int i = 0; i < n; ++i) {
            Conn& c = cs[ev[static_cast<std::size_t>(i)].data.u64];
            if (!c.ready && handshake_step(c)) ++ready;
        }
    }
    const std::string msg(size, 'm');
    std::vector<char> buf(65536);
    const double cpu0 = cpu_seconds();
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    for (auto& c : cs) write_all(c, msg);
    std::uint64_t messages = 0;
    while (Clock::now() < end) {
        const int n = ::epoll_wait(epfd, ev.data(), static_cast<int>(ev.size()), 100);
        for (int i = 0; i < n; ++i) {
            Conn& c = cs[ev[static_cast<std::size_t>(i)].data.u64];
            for (;;) {  // edge-triggered: read until OpenSSL wants the socket again
                const int r = SSL_read(c.ssl, buf.data(), static_cast<int>(buf.size()));
                if (r <= 0) {
                    const int e = SSL_get_error(c.ssl, r);
                    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
                    die("SSL_read (the server closed)");
                }
                c.got += static_cast<std::size_t>(r);
                while (c.got >= size) {
                    c.got -= size;
                    ++messages;
                    write_all(c, msg);
                }
            }
        }
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("mode=tls-pingpong conns=%d size=%zu seconds=%.2f messages=%llu rate=%.0f client_cpu_s=%.3f\n", conns,
                size, elapsed, static_cast<unsigned long long>(messages), static_cast<double>(messages) / elapsed,
                cpu_seconds() - cpu0);
    for (auto& c : cs) close_conn(c);
    SSL_CTX_free(ctx);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: coserve-bench-tls handshake|pingpong --port P [options]\n");
        return 2;
    }
    for (int i = 2; i + 1 < argc; i += 2) args[std::string(argv[i]).substr(2)] = argv[i + 1];
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    const std::string mode = argv[1];
    if (mode == "handshake") return handshakes();
    if (mode == "pingpong") return pingpong();
    std::fprintf(stderr, "coserve-bench-tls: unknown mode %s\n", mode.c_str());
    return 2;
}
