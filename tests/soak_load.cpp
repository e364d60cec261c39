// coserve-soak: mixed load on every service of one coserved, for scripts/soak.
// Blocking sockets on loopback, one thread per role, every wait bounded by
// SO_RCVTIMEO/SO_SNDTIMEO; it stops by itself after --seconds. It checks
// what it can see from outside: echo and adder answers byte for byte,
// downloads complete, and every chat line a member sent reached every other
// member, in order. Exit status 1 if any check failed.
//
//   coserve-soak --seconds N --echo P --udp-echo P --daytime P --adder P
//                --uppercase P --chargen P --chat P --files P --file NAME --file-size BYTES
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::map<std::string, int> ports;
clock_type::time_point deadline;
std::atomic<bool> stop_chat{false};
std::atomic<long> failures{0};
std::mutex report_mutex;
std::map<std::string, long> counts;

void count(const std::string& what, long n = 1) {
    const std::lock_guard lock(report_mutex);
    counts[what] += n;
}

void fail(const std::string& what) {
    if (failures++ < 20) std::fprintf(stderr, "coserve-soak: FAIL: %s\n", what.c_str());
}

bool running() { return clock_type::now() < deadline; }

class Socket {
public:
    explicit Socket(int type = SOCK_STREAM) : fd_(::socket(AF_INET, type | SOCK_CLOEXEC, 0)) {
        if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
        timeval tv{5, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    ~Socket() {
        if (fd_ >= 0) ::close(fd_);
    }
    Socket(const Socket&) = delete;
    int fd() const { return fd_; }

    void connect(const std::string& service) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(ports.at(service)));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("connect " + service + ": " + std::strerror(errno));
    }
    void send(std::string_view data) {
        while (!data.empty()) {
            const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw std::runtime_error(std::string("send: ") + std::strerror(errno));
            data.remove_prefix(static_cast<std::size_t>(n));
        }
    }
    // Some bytes; "" at EOF; throws on timeout or error.
    std::string recv_some(std::size_t max = 65536) {
        std::string buf(max, '\0');
        for (;;) {
            const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw std::runtime_error(std::string("recv: ") + std::strerror(errno));
            buf.resize(static_cast<std::size_t>(n));
            return buf;
        }
    }
    std::string recv_exact(std::size_t n) {
        std::string out;
        while (out.size() < n) {
            std::string got = recv_some(std::min<std::size_t>(n - out.size(), 65536));
            if (got.empty()) throw std::runtime_error("EOF after " + std::to_string(out.size()) + " of " + std::to_string(n) + " bytes");
            out += got;
        }
        return out;
    }
    std::string line() {
        for (;;) {
            if (auto lf = buffer_.find('\n'); lf != std::string::npos) {
                std::string l = buffer_.substr(0, lf);
                buffer_.erase(0, lf + 1);
                if (!l.empty() && l.back() == '\r') l.pop_back();
                return l;
            }
            std::string got = recv_some();
            if (got.empty()) throw std::runtime_error("EOF while waiting for a line");
            buffer_ += got;
        }
    }
    // Bytes read past the last line.
    std::string take_buffered() { return std::exchange(buffer_, {}); }
    // Closes with RST instead of FIN.
    void reset() {
        linger l{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
    std::string buffer_;
};

// Runs `body` until the deadline; an exception is a failure of `role`.
template <class F>
std::thread role(const std::string& name, F body) {
    return std::thread([name, body]() mutable {
        std::mt19937 rng(std::hash<std::string>{}(name));
        while (running()) {
            try {
                body(rng);
            } catch (const std::exception& e) {
                fail(name + ": " + e.what());
                std::this_thread::sleep_for(100ms);
            }
        }
    });
}

void connect_storm(std::mt19937&) {
    Socket s;
    s.connect("daytime");
    const std::string l = s.line();
    if (l.size() < 10) throw std::runtime_error("daytime answered \"" + l + "\"");
    count("daytime connections");
}

void echo_bytes(std::mt19937& rng) {
    Socket s;
    s.connect("echo");
    std::string data(std::uniform_int_distribution<std::size_t>(1, 256 << 10)(rng), '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    // Write and read in turns of 64 KiB so neither side's buffers fill up.
    for (std::size_t off = 0; off < data.size(); off += 65536) {
        const std::string_view part = std::string_view(data).substr(off, 65536);
        s.send(part);
        if (s.recv_exact(part.size()) != part) throw std::runtime_error("echo returned different bytes");
    }
    count("echo bytes", static_cast<long>(data.size()));
}

void adder_lines(std::mt19937& rng) {
    Socket s;
    s.connect("adder");
    std::uniform_int_distribution<long long> d(-1'000'000'000'000LL, 1'000'000'000'000LL);
    for (int i = 0; i < 100 && running(); ++i) {
        const long long a = d(rng), b = d(rng);
        s.send(std::to_string(a) + "," + std::to_string(b) + "\n");
        if (s.line() != std::to_string(a + b)) throw std::runtime_error("adder: wrong sum");
        count("adder lines");
    }
}

void download(std::mt19937& rng, const std::string& file, std::size_t size) {
    Socket s;
    s.connect("files");
    const bool abort_midway = rng() % 4 == 0;
    s.send("GET " + file + "\n");
    if (s.line() != "OK " + std::to_string(size)) throw std::runtime_error("files: unexpected GET reply");
    if (abort_midway) {  // read a little, then vanish with RST mid-transfer
        s.recv_exact(std::min<std::size_t>(size, 100000));
        s.reset();
        count("downloads reset midway");
        return;
    }
    std::size_t got = s.take_buffered().size();
    try {
        while (got < size) {
            const std::string part = s.recv_some();
            if (part.empty()) throw std::runtime_error("EOF");
            got += part.size();
        }
    } catch (const std::exception& e) {
        throw std::runtime_error("files: " + std::string(e.what()) + " after " + std::to_string(got) + " of " +
                                 std::to_string(size) + " bytes");
    }
    count("downloads");
}

void udp_flood(std::mt19937&) {
    Socket s(SOCK_DGRAM);
    s.connect("udp-echo");
    timeval tv{0, 20000};
    ::setsockopt(s.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    long sent = 0, answered = 0;
    for (int i = 0; i < 2000 && running(); ++i) {
        const std::string d = "datagram " + std::to_string(i);
        if (::send(s.fd(), d.data(), d.size(), 0) > 0) ++sent;
        char buf[128];
        while (::recv(s.fd(), buf, sizeof buf, MSG_DONTWAIT) > 0) ++answered;
        if (i % 100 == 99) std::this_thread::sleep_for(10ms);
    }
    while (::recv(s.fd(), nullptr, 0, 0) >= 0) ++answered;
    count("udp datagrams sent", sent);
    count("udp datagrams answered", answered);
}

// Clients that misbehave; the daemon must shrug each of them off.
void hostile(std::mt19937& rng) {
    switch (rng() % 5) {
    case 0: {  // slowloris on a line service: a byte every 100 ms, never a newline
        Socket s;
        s.connect("adder");
        for (int i = 0; i < 20 && running(); ++i) {
            s.send("1");
            std::this_thread::sleep_for(100ms);
        }
        count("hostile: slowloris");
        break;
    }
    case 1: {  // never reads chargen, then resets
        Socket s;
        s.connect("chargen");
        std::this_thread::sleep_for(1s);
        s.reset();
        count("hostile: non-reader");
        break;
    }
    case 2: {  // a telnet IAC flood and NUL bytes to adder, invalid UTF-8 and NULs to uppercase
        Socket s;
        s.connect("adder");
        std::string junk;
        for (int i = 0; i < 50000; ++i) junk += "\xff\xfb\x01";
        s.send(junk + "4,5\n" + std::string("1,\0\n", 4));
        if (s.line() != "9") throw std::runtime_error("adder: wrong sum after an IAC flood");
        if (!s.line().starts_with("ERR not a number")) throw std::runtime_error("adder: NUL byte not refused");
        Socket u;
        u.connect("uppercase");
        const std::string bytes("a\0b\xc3\x28\xff\n", 7);
        u.send(bytes);
        if (u.recv_exact(bytes.size()) != std::string("A\0B\xc3\x28\xff\n", 7))
            throw std::runtime_error("uppercase: invalid UTF-8 not passed through");
        count("hostile: junk");
        break;
    }
    case 3: {  // a 4 MiB line: one "too long" error, and the connection still works
        Socket s;
        s.connect("adder");
        s.send(std::string(4 << 20, '7') + "\n");
        if (!s.line().starts_with("ERR line too long")) throw std::runtime_error("adder: no too-long error");
        s.send("2,3\n");
        if (s.line() != "5") throw std::runtime_error("adder: wrong answer after a long line");
        count("hostile: long line");
        break;
    }
    default: {  // RST in the middle of echoing a megabyte
        Socket s;
        s.connect("echo");
        s.send(std::string(256 << 10, 'x'));
        s.reset();
        count("hostile: reset mid-write");
        break;
    }
    }
}

// A chat member: sends numbered lines while the clock runs, and checks that
// the lines of every other member arrive complete and in order.
struct Member {
    std::string nick;
    std::atomic<long> sent{0};
    std::map<std::string, long> last_seen;  // sender -> last number received
    bool ok = true;
};

void chat_member(Member& m, std::atomic<int>& joined, int members, std::vector<Member>& all) {
    try {
        Socket s;
        s.connect("chat");
        s.line();  // welcome
        s.send("/nick " + m.nick + "\n");
        while (s.line().find("you are now known as") == std::string::npos) {
        }
        ++joined;
        std::jthread reader([&] {  // joined on every way out, before the socket closes
            try {
                for (;;) {
                    const std::string l = s.line();
                    if (l.empty() || l[0] != '<') continue;  // notices: joins, leaves
                    const auto close = l.find("> ");
                    const std::string from = l.substr(1, close - 1);
                    const long n = std::stol(l.substr(close + 2));
                    long& last = m.last_seen[from];
                    if (n != last + 1) {
                        fail("chat: " + m.nick + " got line " + std::to_string(n) + " from " + from + " after " + std::to_string(last));
                        m.ok = false;
                    }
                    last = n;
                    if (n < 0) return;  // never
                }
            } catch (const std::exception&) {
                // EOF after /quit
            }
        });
        while (joined < members && running()) std::this_thread::sleep_for(10ms);
        while (!stop_chat) {
            s.send(std::to_string(m.sent + 1) + "\n");
            ++m.sent;
            std::this_thread::sleep_for(100ms);  // 10 lines a second, under chat's default rate
        }
        std::this_thread::sleep_for(1500ms);  // let the last lines arrive
        s.send("/quit\n");
        reader.join();
        for (const auto& other : all) {
            if (&other == &m) continue;
            const long got = m.last_seen.count(other.nick) ? m.last_seen.at(other.nick) : 0;
            if (got != other.sent) {
                fail("chat: " + m.nick + " received " + std::to_string(got) + " of " + std::to_string(other.sent.load()) +
                     " lines from " + other.nick);
                m.ok = false;
            } else {
                count("chat deliveries", got);
            }
        }
    } catch (const std::exception& e) {
        fail("chat member " + m.nick + ": " + e.what());
    }
}

void chat_churn(std::mt19937& rng) {
    Socket s;
    s.connect("chat");
    s.line();
    s.send("/join churn" + std::to_string(rng() % 3) + "\nhello\n/who\n");
    std::this_thread::sleep_for(200ms);
    s.send("/quit\n");
    count("chat churn sessions");
}

}  // namespace

int main(int argc, char** argv) {
    long seconds = 60;
    std::string file;
    std::size_t file_size = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--seconds") seconds = std::stol(v);
        else if (k == "--file") file = v;
        else if (k == "--file-size") file_size = std::stoul(v);
        else if (k.starts_with("--")) ports[k.substr(2)] = std::stoi(v);
    }
    for (const char* need : {"echo", "udp-echo", "daytime", "adder", "uppercase", "chargen", "chat", "files"})
        if (!ports.count(need) || file.empty()) {
            std::fprintf(stderr, "usage: coserve-soak --seconds N --echo P --udp-echo P --daytime P --adder P "
                                 "--uppercase P --chargen P --chat P --files P --file NAME --file-size BYTES\n");
            return 2;
        }
    deadline = clock_type::now() + std::chrono::seconds(seconds);

    constexpr int members = 8;
    std::vector<Member> chat(members);
    for (int i = 0; i < members; ++i) chat[i].nick = "soak" + std::to_string(i);
    std::atomic<int> joined{0};
    std::vector<std::thread> threads;
    for (auto& m : chat) threads.emplace_back([&] { chat_member(m, joined, members, chat); });
    threads.push_back(role("storm 1", connect_storm));
    threads.push_back(role("storm 2", connect_storm));
    threads.push_back(role("echo 1", echo_bytes));
    threads.push_back(role("echo 2", echo_bytes));
    threads.push_back(role("adder", adder_lines));
    threads.push_back(role("download", [&](std::mt19937& rng) { download(rng, file, file_size); }));
    threads.push_back(role("udp", udp_flood));
    threads.push_back(role("hostile 1", hostile));
    threads.push_back(role("hostile 2", hostile));
    threads.push_back(role("chat churn", chat_churn));

    std::this_thread::sleep_until(deadline);
    stop_chat = true;
    for (auto& t : threads) t.join();
    for (const auto& [what, n] : counts) std::printf("coserve-soak: %-24s %ld\n", what.c_str(), n);
    const bool chat_ok = std::all_of(chat.begin(), chat.end(), [](const Member& m) { return m.ok; });
    std::printf("coserve-soak: %s\n", failures == 0 && chat_ok ? "all checks passed" : "FAILED");
    return failures == 0 && chat_ok ? 0 : 1;
}
