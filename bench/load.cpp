// coserve-bench: the load generator of scripts/bench. One thread, raw epoll,
// non-blocking sockets, loopback only; every mode stops by itself. It prints
// one line of `key=value` figures, including its own CPU time, so the caller
// can check that the generator costs less per message than the server.
//
//   coserve-bench pingpong --port P --conns C --size S --seconds T
//       C connections, one message of S bytes in flight on each; rate and
//       latency percentiles (client timestamps).
//   coserve-bench stream --port P --conns C --size S --seconds T
//       C connections writing S-byte chunks and reading the echo back.
//   coserve-bench udp --port P --conns C --size S --seconds T
//       C sockets, one datagram in flight each (lost ones resent after 200 ms).
//   coserve-bench connrate --port P --conns C --seconds T [--from ADDR]
//       C concurrent connect-read-until-EOF-close loops (daytime), from
//       127.0.0.2-127.0.0.9, or from ADDR only.
//   coserve-bench hold --port P --conns N --ready FILE --release FILE
//       opens N connections from 127.0.0.2-127.0.0.9, writes FILE --ready
//       when all are up, waits for FILE --release to appear, then sends one
//       byte on each and counts those that answer.
//   coserve-bench chat --port P --members N --senders K --seconds T
//       [--stalled 1] [--window W] [--format coserve|ncat] [--from ADDR] [--nick 0]
//       [--ready FILE] [--irc-port Q]
//       N chat members (K of them send numbered, timestamped lines, at most W
//       of their lines not yet delivered to everyone), optionally one more
//       member that never reads; deliveries/s, lost lines, latency. With
//       --irc-port, every second member (the odd ones) is an IRC client on
//       port Q, in #lobby (coserved's IRC front-end).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "coserve-bench: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

std::map<std::string, std::string> args;
long arg(const std::string& k, long def) { return args.count(k) ? std::stol(args[k]) : def; }
std::string sarg(const std::string& k, const std::string& def) { return args.count(k) ? args[k] : def; }

std::uint64_t now_ns() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
}

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

sockaddr_in address(const char* ip, int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

// A blocking connect (set non-blocking afterwards), from `from` if given.
int connect_to(int port, const char* from = nullptr, int type = SOCK_STREAM) {
    const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (from) {
        sockaddr_in f = address(from, 0);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&f), sizeof f) != 0) die("bind");
    }
    timeval tv{5, 0};  // a server that does not accept fails the run in 5 s, not after SYN retries
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a = address("127.0.0.1", port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect");
    const int one = 1;
    if (type == SOCK_STREAM) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

void nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Latencies in whole microseconds, as counts per microsecond up to 1 s
// (and each slower one kept), so adding one costs an increment, not a
// growing vector: the chat case adds tens of millions a second. The
// percentiles are exact at that resolution.
struct Percentiles {
    static constexpr std::size_t buckets = 1u << 20;
    std::vector<std::uint32_t> counts = std::vector<std::uint32_t>(buckets);
    std::vector<std::uint32_t> slow;  // samples of `buckets` us and more
    std::uint64_t n = 0;
    void add(std::uint64_t ns) {
        const std::uint64_t us = ns / 1000;
        if (us < buckets) ++counts[us];
        else slow.push_back(static_cast<std::uint32_t>(std::min<std::uint64_t>(us, UINT32_MAX)));
        ++n;
    }
    // The k-th smallest sample, k = q * (n - 1) rounded down.
    double at(double q) {
        if (n == 0) return 0;
        const auto k = static_cast<std::uint64_t>(q * static_cast<double>(n - 1));
        std::uint64_t below = 0;
        for (std::size_t us = 0; us < buckets; ++us) {
            below += counts[us];
            if (below > k) return static_cast<double>(us);
        }
        std::sort(slow.begin(), slow.end());
        return slow[static_cast<std::size_t>(k - below)];
    }
    std::string report() {
        char b[200];
        std::snprintf(b, sizeof b, "p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f", at(0.5), at(0.99), at(0.999), at(1.0));
        return b;
    }
};

class Epoll {
public:
    Epoll() : fd_(epoll_create1(EPOLL_CLOEXEC)) {
        if (fd_ < 0) die("epoll_create1");
    }
    ~Epoll() { ::close(fd_); }
    void add(int fd, std::uint32_t events, std::uint64_t data) {
        epoll_event e{};
        e.events = events;
        e.data.u64 = data;
        if (epoll_ctl(fd_, EPOLL_CTL_ADD, fd, &e) != 0) die("epoll_ctl");
    }
    void mod(int fd, std::uint32_t events, std::uint64_t data) {
        epoll_event e{};
        e.events = events;
        e.data.u64 = data;
        epoll_ctl(fd_, EPOLL_CTL_MOD, fd, &e);
    }
    void del(int fd) { epoll_ctl(fd_, EPOLL_CTL_DEL, fd, nullptr); }
    int wait(epoll_event* ev, int max, int timeout_ms) {
        const int n = epoll_wait(fd_, ev, max, timeout_ms);
        return n < 0 ? 0 : n;
    }

private:
    int fd_;
};

char scratch[1 << 16];

// Client source addresses: eight loopback addresses, so many connections do
// not exhaust one address's ephemeral ports and per-source tables see many.
const char* const sources[] = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5",
                               "127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9"};

// --- pingpong and stream -----------------------------------------------------

int pingpong(bool stream) {
    const int port = static_cast<int>(arg("port", 0)), conns = static_cast<int>(arg("conns", 1));
    const auto size = static_cast<std::size_t>(arg("size", 64));
    const double seconds = static_cast<double>(arg("seconds", 5));
    struct Conn {
        int fd;
        std::size_t got = 0;
        std::uint64_t sent_at = 0;
    };
    std::vector<Conn> cs(static_cast<std::size_t>(conns));
    std::string msg(size, 'm');
    Epoll ep;
    for (int i = 0; i < conns; ++i) {
        cs[static_cast<std::size_t>(i)].fd = connect_to(port);
        nonblocking(cs[static_cast<std::size_t>(i)].fd);
        ep.add(cs[static_cast<std::size_t>(i)].fd, EPOLLIN, static_cast<std::uint64_t>(i));
    }
    const double cpu0 = cpu_seconds();
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    for (auto& c : cs) {
        c.sent_at = now_ns();
        if (::send(c.fd, msg.data(), size, MSG_NOSIGNAL) != static_cast<ssize_t>(size)) die("send");
    }
    Percentiles lat;
    std::uint64_t messages = 0, bytes = 0;
    std::vector<epoll_event> ev(1024);
    while (Clock::now() < end) {
        const int n = ep.wait(ev.data(), static_cast<int>(ev.size()), 100);
        for (int i = 0; i < n; ++i) {
            Conn& c = cs[ev[static_cast<std::size_t>(i)].data.u64];
            const ssize_t r = ::recv(c.fd, scratch, sizeof scratch, 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                die("recv (the server closed)");
            }
            bytes += static_cast<std::uint64_t>(r);
            c.got += static_cast<std::size_t>(r);
            while (c.got >= size) {  // one whole message back (stream: one chunk's worth)
                c.got -= size;
                ++messages;
                if (!stream) lat.add(now_ns() - c.sent_at);
                c.sent_at = now_ns();
                if (::send(c.fd, msg.data(), size, MSG_NOSIGNAL) != static_cast<ssize_t>(size)) die("send");
            }
        }
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu = cpu_seconds() - cpu0;
    std::printf("mode=%s conns=%d size=%zu seconds=%.2f messages=%llu rate=%.0f MBps=%.1f client_cpu_s=%.3f %s\n",
                stream ? "stream" : "pingpong", conns, size, elapsed, static_cast<unsigned long long>(messages),
                static_cast<double>(messages) / elapsed, static_cast<double>(bytes) / elapsed / 1e6, cpu,
                stream ? "" : lat.report().c_str());
    for (auto& c : cs) ::close(c.fd);
    return 0;
}

// --- udp -----------------------------------------------------------------------

int udp() {
    const int port = static_cast<int>(arg("port", 0)), conns = static_cast<int>(arg("conns", 1));
    const auto size = static_cast<std::size_t>(arg("size", 64));
    const double seconds = static_cast<double>(arg("seconds", 5));
    struct Sock {
        int fd;
        std::uint64_t sent_at;
    };
    std::vector<Sock> ss(static_cast<std::size_t>(conns));
    std::string msg(size, 'u');
    Epoll ep;
    for (int i = 0; i < conns; ++i) {
        ss[static_cast<std::size_t>(i)].fd = connect_to(port, nullptr, SOCK_DGRAM);
        nonblocking(ss[static_cast<std::size_t>(i)].fd);
        ep.add(ss[static_cast<std::size_t>(i)].fd, EPOLLIN, static_cast<std::uint64_t>(i));
    }
    const double cpu0 = cpu_seconds();
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    for (auto& s : ss) {
        s.sent_at = now_ns();
        ::send(s.fd, msg.data(), size, 0);
    }
    Percentiles lat;
    std::uint64_t answered = 0, resent = 0;
    std::vector<epoll_event> ev(1024);
    auto last_check = Clock::now();
    while (Clock::now() < end) {
        const int n = ep.wait(ev.data(), static_cast<int>(ev.size()), 20);
        for (int i = 0; i < n; ++i) {
            Sock& s = ss[ev[static_cast<std::size_t>(i)].data.u64];
            while (::recv(s.fd, scratch, sizeof scratch, 0) > 0) {
                ++answered;
                lat.add(now_ns() - s.sent_at);
                s.sent_at = now_ns();
                ::send(s.fd, msg.data(), size, 0);
            }
        }
        if (Clock::now() - last_check > std::chrono::milliseconds(50)) {
            last_check = Clock::now();
            const std::uint64_t t = now_ns();
            for (auto& s : ss)
                if (t - s.sent_at > 200'000'000) {  // lost: send another
                    ++resent;
                    s.sent_at = t;
                    ::send(s.fd, msg.data(), size, 0);
                }
        }
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("mode=udp conns=%d size=%zu seconds=%.2f messages=%llu rate=%.0f lost=%llu client_cpu_s=%.3f %s\n", conns,
                size, elapsed, static_cast<unsigned long long>(answered), static_cast<double>(answered) / elapsed,
                static_cast<unsigned long long>(resent), cpu_seconds() - cpu0, lat.report().c_str());
    return 0;
}

// --- connrate --------------------------------------------------------------------

int connrate() {
    const int port = static_cast<int>(arg("port", 0)), conns = static_cast<int>(arg("conns", 8));
    const double seconds = static_cast<double>(arg("seconds", 5));
    Epoll ep;
    std::vector<int> fds(static_cast<std::size_t>(conns), -1);
    sockaddr_in a = address("127.0.0.1", port);
    std::uint64_t done = 0, failed = 0, started = 0;
    const std::string from = sarg("from", "");  // one source only (e.g. 127.0.0.1 for xinetd)
    auto open_one = [&](std::size_t i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_in f = address(from.empty() ? sources[started % 8] : from.c_str(), 0);
        ++started;
        ::bind(fd, reinterpret_cast<sockaddr*>(&f), sizeof f);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
            ++failed;
            ::close(fd);
            fds[i] = -1;
            return;
        }
        fds[i] = fd;
        ep.add(fd, EPOLLIN, i);
    };
    const double cpu0 = cpu_seconds();
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    for (std::size_t i = 0; i < fds.size(); ++i) open_one(i);
    std::vector<epoll_event> ev(256);
    while (Clock::now() < end) {
        const int n = ep.wait(ev.data(), static_cast<int>(ev.size()), 100);
        for (int k = 0; k < n; ++k) {
            const std::size_t i = ev[static_cast<std::size_t>(k)].data.u64;
            const ssize_t r = ::recv(fds[i], scratch, sizeof scratch, 0);
            if (r > 0 || (r < 0 && errno == EAGAIN)) continue;
            if (r == 0) ++done;
            else ++failed;
            ep.del(fds[i]);
            ::close(fds[i]);
            open_one(i);
        }
        for (std::size_t i = 0; i < fds.size(); ++i)
            if (fds[i] < 0) open_one(i);
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("mode=connrate conns=%d seconds=%.2f messages=%llu rate=%.0f failed=%llu client_cpu_s=%.3f\n", conns,
                elapsed, static_cast<unsigned long long>(done), static_cast<double>(done) / elapsed,
                static_cast<unsigned long long>(failed), cpu_seconds() - cpu0);
    for (int fd : fds)
        if (fd >= 0) ::close(fd);
    return 0;
}

// --- hold ----------------------------------------------------------------------------

bool file_exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

int hold() {
    const int port = static_cast<int>(arg("port", 0));
    const long conns = arg("conns", 1000);
    const std::string ready = sarg("ready", ""), release = sarg("release", "");
    std::vector<int> fds;
    fds.reserve(static_cast<std::size_t>(conns));
    for (long i = 0; i < conns; ++i) fds.push_back(connect_to(port, sources[i % 8]));
    // Wait until the server has accepted them all: a byte on the last one answers.
    if (!ready.empty()) {
        FILE* f = std::fopen(ready.c_str(), "w");
        if (f) std::fclose(f);
    }
    for (int i = 0; i < 6000 && !file_exists(release); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    long answered = 0;
    for (int fd : fds) ::send(fd, "x", 1, MSG_NOSIGNAL);
    for (int fd : fds) {
        timeval tv{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char c;
        if (::recv(fd, &c, 1, 0) == 1 && c == 'x') ++answered;
        ::close(fd);
    }
    std::printf("mode=hold conns=%ld answered=%ld\n", conns, answered);
    return answered == conns ? 0 : 1;
}

// --- chat -------------------------------------------------------------------------------

// The digits [p, e) as a number, eight at a time: the 19-digit timestamp
// ending each delivered line was most of this generator's own parsing.
// False if one is not a digit, or there are none or more than 19.
static_assert(std::endian::native == std::endian::little, "eight_digits() reads digits little-endian");
std::uint64_t eight_digits(std::uint64_t w) {
    w -= 0x3030303030303030u;
    w = w * 10 + (w >> 8);
    return (((w & 0x000000FF000000FFu) * (100 + (1000000ull << 32))) +
            (((w >> 16) & 0x000000FF000000FFu) * (1 + (10000ull << 32)))) >>
           32;
}

bool parse_digits(const char* p, const char* e, std::uint64_t& out) {
    if (p >= e || e - p > 19) return false;
    std::uint64_t v = 0;
    for (; (e - p) % 8 != 0; ++p) {  // the leading digits first: the loop's length is known
        const unsigned d = static_cast<unsigned char>(*p) - '0';
        if (d > 9) return false;
        v = v * 10 + d;
    }
    for (; p < e; p += 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        if (((w + 0x4646464646464646u) | (w - 0x3030303030303030u)) & 0x8080808080808080u) return false;
        v = v * 100000000 + eight_digits(w);
    }
    out = v;
    return true;
}

int chat() {
    const int port = static_cast<int>(arg("port", 0));
    const long members = arg("members", 100), senders = arg("senders", 1), window = arg("window", 64);
    const bool stalled = arg("stalled", 0) != 0;
    const bool ncat = sarg("format", "coserve") == "ncat";
    const std::string from = sarg("from", "");  // one source only (peers that look up client names)
    const double seconds = static_cast<double>(arg("seconds", 5));
    struct Member {
        int fd;
        std::string in;
        std::vector<long> last;  // per sender: last sequence number received
        std::string out;         // queued to send (senders only)
    };
    std::vector<Member> ms(static_cast<std::size_t>(members));
    Epoll ep;
    // Members join one by one while what the server sends them (welcome,
    // join notices) is read and dropped, so no member falls behind and is
    // dropped as too slow before the measurement starts.
    std::vector<epoll_event> ev(1024);
    auto drain = [&](int timeout_ms) {
        const int n = ep.wait(ev.data(), static_cast<int>(ev.size()), timeout_ms);
        for (int i = 0; i < n; ++i)
            while (::recv(ms[ev[static_cast<std::size_t>(i)].data.u64].fd, scratch, sizeof scratch, 0) > 0) {
            }
        return n;
    };
    const bool nick = arg("nick", 1) != 0;
    const int irc_port = static_cast<int>(arg("irc-port", 0));
    auto is_irc = [&](long i) { return irc_port != 0 && i % 2 == 1; };
    for (long i = 0; i < members; ++i) {
        Member& m = ms[static_cast<std::size_t>(i)];
        m.fd = connect_to(is_irc(i) ? irc_port : port, from.empty() ? sources[i % 8] : from.c_str());
        m.last.assign(static_cast<std::size_t>(senders), 0);
        if (is_irc(i)) {
            const std::string n = "m" + std::to_string(i);
            const std::string lines = "NICK " + n + "\r\nUSER " + n + " 0 * :" + n + "\r\nJOIN #lobby\r\n";
            ::send(m.fd, lines.data(), lines.size(), MSG_NOSIGNAL);
        } else if (!ncat && nick) {
            const std::string line = "/nick m" + std::to_string(i) + "\n";
            ::send(m.fd, line.data(), line.size(), MSG_NOSIGNAL);
        }
        nonblocking(m.fd);
        ep.add(m.fd, EPOLLIN, static_cast<std::uint64_t>(i));
        if (i % 16 == 15) drain(0);
    }
    int stalled_fd = stalled ? connect_to(port, from.empty() ? "127.0.0.10" : from.c_str()) : -1;
    // Let the joins settle: read until the server has been quiet for 300 ms.
    while (drain(300) > 0) {
    }
    for (auto& m : ms) m.in.clear();
    if (const std::string ready = sarg("ready", ""); !ready.empty()) {  // tell the caller the members are in
        if (FILE* f = std::fopen(ready.c_str(), "w")) std::fclose(f);
    }

    // got[s][seq % ring]: how many members got line seq of sender s,
    // for the lines in flight (complete[s] < seq < next_seq[s]: at most window).
    // The parse below costs a few tens of ns a line, so that the servers,
    // not this generator, set the rate.
    const std::size_t ring = std::bit_ceil(static_cast<std::size_t>(window + 1));  // a mask, not a division
    std::vector<long> next_seq(static_cast<std::size_t>(senders), 1), complete(static_cast<std::size_t>(senders), 0);
    std::vector<std::vector<long>> got(static_cast<std::size_t>(senders), std::vector<long>(ring, 0));
    const long receivers = members - 1;  // every member but the sender (ncat and coserve both skip the sender)
    Percentiles lat;
    std::uint64_t deliveries = 0, out_of_order = 0;
    const double cpu0 = cpu_seconds();
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    auto send_more = [&](long s) {
        Member& m = ms[static_cast<std::size_t>(s)];
        while (next_seq[static_cast<std::size_t>(s)] - 1 - complete[static_cast<std::size_t>(s)] < window && Clock::now() < end) {
            const long seq = next_seq[static_cast<std::size_t>(s)]++;
            got[static_cast<std::size_t>(s)][static_cast<std::size_t>(seq) % ring] = 0;
            m.out.append(is_irc(s) ? "PRIVMSG #lobby :L " : "L ");
            m.out.append(std::to_string(s)).append(" ").append(std::to_string(seq)).append(" ");
            m.out.append(std::to_string(now_ns())).append("\n");
        }
        while (!m.out.empty()) {
            const ssize_t w = ::send(m.fd, m.out.data(), m.out.size(), MSG_NOSIGNAL);
            if (w <= 0) break;
            m.out.erase(0, static_cast<std::size_t>(w));
        }
    };
    // "L s seq ts" at the start of `text`: false if it is not that.
    auto parse = [](std::string_view text, long& s, long& seq, std::uint64_t& ts) {
        if (!text.starts_with("L ")) return false;
        const char* p = text.data() + 2;
        const char* e = text.data() + text.size();
        auto r = std::from_chars(p, e, s);
        if (r.ec != std::errc() || r.ptr == e || *r.ptr != ' ') return false;
        r = std::from_chars(r.ptr + 1, e, seq);
        if (r.ec != std::errc() || r.ptr == e || *r.ptr != ' ') return false;
        if (e[-1] == '\r') --e;  // IRC's line ending
        return parse_digits(r.ptr + 1, e, ts);
    };
    auto received = [&](Member& m, std::string_view line, std::uint64_t now) {
        // "<nick> L s seq ts"; ncat prefixes a chunk, not each line, so a
        // line may also start with "L ". IRC: ":nick!nick@host PRIVMSG
        // #lobby :L s seq ts". Notices have neither.
        if (line.starts_with(':')) {
            const auto irc = line.find(" PRIVMSG #lobby :L ");
            if (irc == std::string_view::npos) return;
            line.remove_prefix(irc + 17);
        } else if (!line.starts_with("L ")) {
            const auto at = line.find(" L ");
            if (at == std::string_view::npos) return;
            line.remove_prefix(at + 1);
        }
        long s = 0, seq = 0;
        std::uint64_t ts = 0;
        if (!parse(line, s, seq, ts) || s < 0 || s >= senders) return;
        lat.add(now - ts);
        ++deliveries;
        long& last = m.last[static_cast<std::size_t>(s)];
        if (seq != last + 1) ++out_of_order;
        last = seq;
        const auto si = static_cast<std::size_t>(s);
        if (seq <= complete[si] || seq >= next_seq[si]) return;  // not in flight (a duplicate)
        if (++got[si][static_cast<std::size_t>(seq) % ring] == receivers)
            while (complete[si] + 1 < next_seq[si] && got[si][static_cast<std::size_t>(complete[si] + 1) % ring] == receivers)
                ++complete[si];
    };
    for (long s = 0; s < senders; ++s) send_more(s);
    while (Clock::now() < end) {
        const int n = ep.wait(ev.data(), static_cast<int>(ev.size()), 50);
        for (int i = 0; i < n; ++i) {
            Member& m = ms[ev[static_cast<std::size_t>(i)].data.u64];
            const ssize_t r = ::recv(m.fd, scratch, sizeof scratch, 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                die("chat: the server closed a member");
            }
            const auto now = static_cast<std::uint64_t>(now_ns());
            std::string_view in(scratch, static_cast<std::size_t>(r));
            if (!m.in.empty()) {  // a line split between reads
                m.in.append(in);
                in = m.in;
            }
            std::size_t pos = 0;
            for (;;) {
                const auto lf = in.find('\n', pos);
                if (lf == std::string_view::npos) break;
                received(m, in.substr(pos, lf - pos), now);
                pos = lf + 1;
            }
            if (in.data() == m.in.data()) m.in.erase(0, pos);
            else m.in.assign(in.substr(pos));
        }
        for (long s = 0; s < senders; ++s) send_more(s);
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu = cpu_seconds() - cpu0;
    // Lines sent long enough ago (all but the last window) must have reached everyone.
    long lost = 0;
    for (long s = 0; s < senders; ++s) {
        const auto si = static_cast<std::size_t>(s);
        for (long seq = complete[si] + 1; seq < next_seq[si] - window; ++seq) lost += receivers - got[si][static_cast<std::size_t>(seq) % ring];
    }
    long sent = 0;
    for (long s = 0; s < senders; ++s) sent += next_seq[static_cast<std::size_t>(s)] - 1;
    std::printf("mode=chat members=%ld senders=%ld stalled=%d seconds=%.2f lines=%ld deliveries=%llu rate=%.0f lost=%ld "
                "out_of_order=%llu client_cpu_s=%.3f %s\n",
                members, senders, stalled ? 1 : 0, elapsed, sent, static_cast<unsigned long long>(deliveries),
                static_cast<double>(deliveries) / elapsed, lost, static_cast<unsigned long long>(out_of_order), cpu,
                lat.report().c_str());
    if (stalled_fd >= 0) ::close(stalled_fd);
    for (auto& m : ms) ::close(m.fd);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: coserve-bench pingpong|stream|udp|connrate|hold|chat --port P [options]\n");
        return 2;
    }
    for (int i = 2; i + 1 < argc; i += 2) args[std::string(argv[i]).substr(2)] = argv[i + 1];
    rlimit r{};
    getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
    const std::string mode = argv[1];
    if (mode == "pingpong") return pingpong(false);
    if (mode == "stream") return pingpong(true);
    if (mode == "udp") return udp();
    if (mode == "connrate") return connrate();
    if (mode == "hold") return hold();
    if (mode == "chat") return chat();
    std::fprintf(stderr, "coserve-bench: unknown mode %s\n", mode.c_str());
    return 2;
}
