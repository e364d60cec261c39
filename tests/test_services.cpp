// Integration: the classic services over real loopback sockets, byte-exact.
#include <catch2/catch.hpp>

#include "support.hpp"

#include "../services/protocols.hpp"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <poll.h>
#include <sys/socket.h>

#include <random>
#include <thread>
#include <tuple>

using namespace testing;
using coserve::services::chargen_period;

namespace {

const char* const all_services = R"(
[uppercase]
tcp = 127.0.0.1:0
udp = 127.0.0.1:0
[daytime]
tcp = 127.0.0.1:0
udp = 127.0.0.1:0
[daytime-utc]
service = daytime
tcp = 127.0.0.1:0
utc = true
[rfc3339]
service = daytime
tcp = 127.0.0.1:0
udp = 127.0.0.1:0
format = rfc3339
utc = true
[rfc2822]
service = daytime
tcp = 127.0.0.1:0
format = rfc2822
utc = true
[time]
tcp = 127.0.0.1:0
udp = 127.0.0.1:0
[adder]
tcp = 127.0.0.1:0
udp = 127.0.0.1:0
[hello]
tcp = 127.0.0.1:0
udp = 127.0.0.1:0
[thanks]
service = hello
tcp = 127.0.0.1:0
banner = Thank you for connecting
close_after_banner = true
[discard]
tcp = 127.0.0.1:0
udp = 127.0.0.1:0
[chargen]
tcp = 127.0.0.1:0
udp = 127.0.0.1:0
)";

// Seconds between a time printed by a service and now.
long long seconds_off(const std::string& text, const char* format, bool utc) {
    std::tm tm{};
    const char* end = strptime(text.c_str(), format, &tm);
    if (!end) return 1'000'000;
    tm.tm_isdst = -1;
    // mktime re-reads TZ on every call under a glibc-internal lock that
    // ThreadSanitizer cannot see; the test's client threads take turns.
    static std::mutex tz;
    const std::lock_guard lock(tz);
    const std::time_t t = utc ? timegm(&tm) : std::mktime(&tm);
    return std::llabs(static_cast<long long>(t - std::time(nullptr)));
}

long rss_kib() {
    std::ifstream status("/proc/self/status");
    std::string key;
    long value = 0;
    while (status >> key) {
        if (key == "VmRSS:") {
            status >> value;
            return value;
        }
        status.ignore(1 << 16, '\n');
    }
    return -1;
}

}  // namespace

TEST_CASE("uppercase over TCP: each chunk answered at once") {
    RunningServer rs(all_services);
    TcpClient c(rs.tcp("uppercase"));
    c.send("hello");  // no newline: a stream transform answers the chunk
    CHECK(c.recv_exact(5) == "HELLO");
    c.send("straße café \xef\xac\x81 αβγ привет\n");
    const std::string want = "STRASSE CAFÉ FI ΑΒΓ ПРИВЕТ\n";
    CHECK(c.recv_exact(want.size()) == want);
}

TEST_CASE("uppercase over TCP: a character split across two writes is converted whole") {
    RunningServer rs(all_services);
    TcpClient c(rs.tcp("uppercase"));
    c.send("stra\xc3");
    CHECK(c.recv_exact(4) == "STRA");
    std::this_thread::sleep_for(50ms);
    c.send("\x9f" "e");
    CHECK(c.recv_exact(3) == "SSE");
}

TEST_CASE("uppercase over TCP: invalid UTF-8 passes through unchanged") {
    RunningServer rs(all_services);
    TcpClient c(rs.tcp("uppercase"));
    const std::string in = "ok\xff\xfe" "ab\xc3(x\xed\xa0\x80y";
    const std::string want = "OK\xff\xfe" "AB\xc3(X\xed\xa0\x80Y";
    c.send(in);
    CHECK(c.recv_exact(want.size()) == want);
    c.send("\xe2\x82");  // an incomplete character, then the end of the stream
    c.shutdown_write();
    CHECK(c.recv_all() == "\xe2\x82");
}

TEST_CASE("uppercase over UDP") {
    RunningServer rs(all_services);
    UdpClient u(rs.udp("uppercase"));
    u.send("straße\n");
    CHECK(u.recv() == std::optional<std::string>("STRASSE\n"));
    u.send("no newline");
    CHECK(u.recv() == std::optional<std::string>("NO NEWLINE"));
}

TEST_CASE("daytime in each format matches the system clock") {
    RunningServer rs(all_services);
    auto line = [&](const char* instance) {
        TcpClient c(rs.tcp(instance));
        return c.recv_all();
    };
    auto local = line("daytime");
    REQUIRE(local.ends_with("\r\n"));
    CHECK(local.size() == 26);  // "Sat Nov 21 22:46:47 2026\r\n"
    CHECK(seconds_off(local, "%a %b %e %H:%M:%S %Y", false) <= 2);
    auto utc = line("daytime-utc");
    CHECK(seconds_off(utc, "%a %b %e %H:%M:%S %Y", true) <= 2);
    auto rfc3339 = line("rfc3339");
    CHECK(rfc3339.size() == 22);
    CHECK(rfc3339.substr(19) == "Z\r\n");
    CHECK(seconds_off(rfc3339, "%Y-%m-%dT%H:%M:%S", true) <= 2);
    auto rfc2822 = line("rfc2822");
    CHECK(rfc2822.ends_with(" +0000\r\n"));
    CHECK(seconds_off(rfc2822, "%a, %d %b %Y %H:%M:%S", true) <= 2);

    UdpClient u(rs.udp("rfc3339"));
    u.send("");  // even an empty datagram is answered
    auto reply = u.recv();
    REQUIRE(reply);
    CHECK(seconds_off(*reply, "%Y-%m-%dT%H:%M:%S", true) <= 2);
}

TEST_CASE("time over TCP and UDP: 4 big-endian bytes since 1900") {
    RunningServer rs(all_services);
    auto decode = [](const std::string& b) {
        REQUIRE(b.size() == 4);
        std::uint32_t v = 0;
        for (unsigned char c : b) v = v << 8 | c;
        return static_cast<long long>(v) - 2'208'988'800LL;
    };
    TcpClient c(rs.tcp("time"));
    CHECK(std::llabs(decode(c.recv_all()) - std::time(nullptr)) <= 2);
    UdpClient u(rs.udp("time"));
    u.send("x");
    auto reply = u.recv();
    REQUIRE(reply);
    CHECK(std::llabs(decode(*reply) - std::time(nullptr)) <= 2);
}

TEST_CASE("time through the real rdate client over TCP and UDP") {
    RunningServer rs(all_services);
    for (bool udp : {false, true}) {
        const auto port = udp ? rs.udp("time").port() : rs.tcp("time").port();
        const std::string cmd =
            "timeout 10 rdate -p " + std::string(udp ? "-u " : "") + "-o " + std::to_string(port) + " 127.0.0.1 2>&1";
        int status = -1;
        const std::string out = run(cmd, &status);
        INFO(cmd << " printed: " << out);
        REQUIRE(status == 0);
        // "Sun Nov 22 00:30:00 UTC 2026": ctime with the zone name before the year.
        std::istringstream words(out);
        std::string w[6];
        for (auto& x : w) words >> x;
        REQUIRE_FALSE(w[5].empty());
        CHECK(seconds_off(w[0] + " " + w[1] + " " + w[2] + " " + w[3] + " " + w[5], "%a %b %e %H:%M:%S %Y", false) <= 2);
    }
}

TEST_CASE("adder over TCP: replies mirror the request's line ending") {
    RunningServer rs(all_services);
    TcpClient c(rs.tcp("adder"));
    c.send("50,40\n");
    CHECK(c.recv_exact(3) == "90\n");
    c.send("1.5 + 2.25\r\n");
    CHECK(c.recv_exact(6) == "3.75\r\n");
    c.send("0.1,0.2\n1.50+2.50\n99999999999999999999,1\n-7,3\n");
    const std::string want = "0.3\n4\n100000000000000000000\n-4\n";
    CHECK(c.recv_exact(want.size()) == want);
    const std::string a(100, '9');
    c.send(a + "," + a + "\n");
    const std::string sum = "1" + std::string(99, '9') + "8\n";
    CHECK(c.recv_exact(sum.size()) == sum);
}

TEST_CASE("adder errors keep the connection open") {
    RunningServer rs("[adder]\ntcp = 127.0.0.1:0\nmax_terms = 3\n");
    TcpClient c(rs.tcp("adder"));
    const std::string exchange[][2] = {
        {"abc\n", "ERR not a number: \"abc\"\n"},
        {"\n", "ERR empty line\n"},
        {"1 2 3 4\n", "ERR too many terms (max 3)\n"},
        {"1,2\n", "3\n"},
    };
    for (const auto& [request, reply] : exchange) {
        c.send(request);
        CHECK(c.recv_exact(reply.size()) == reply);
    }
}

TEST_CASE("adder: a 10 MiB line is refused as soon as it passes max_line and never held") {
    RunningServer rs(all_services);
    TcpClient c(rs.tcp("adder"));
    const std::string reply = "ERR line too long (max 8192 bytes)\n";
    const std::string chunk(64 * 1024, '7');
    c.send(chunk);
    // The error arrives after the first 64 KiB: the server did not wait for the LF.
    CHECK(c.recv_exact(reply.size()) == reply);
    for (int i = 1; i < 160; ++i) c.send(chunk);  // the rest of 10 MiB: discarded, no more replies
    c.send("\n2,3\n");
    CHECK(c.recv_exact(2) == "5\n");
}

TEST_CASE("adder: the max_line boundary") {
    RunningServer rs("[adder]\ntcp = 127.0.0.1:0\nmax_line = 10\n");
    TcpClient c(rs.tcp("adder"));
    c.send("1234567,89\r\n");  // exactly 10 bytes before CRLF
    CHECK(c.recv_exact(9) == "1234656\r\n");
    c.send("1234567,890\n");  // 11 bytes
    CHECK(c.recv_exact(33) == "ERR line too long (max 10 bytes)\n");
    c.send("1,1\n");
    CHECK(c.recv_exact(2) == "2\n");
}

TEST_CASE("adder: a partial line is answered after line_idle or at half-close, without line ending") {
    RunningServer rs(all_services);
    {
        TcpClient c(rs.tcp("adder"));
        c.send("50,40");
        CHECK(c.recv_some(3s) == "90");
        c.send("1,1\n");  // the connection goes on normally
        CHECK(c.recv_exact(2) == "2\n");
    }
    {
        TcpClient c(rs.tcp("adder"));
        c.send("2,2");
        c.shutdown_write();
        CHECK(c.recv_all() == "4");
    }
}

TEST_CASE("adder: telnet negotiation bytes are ignored") {
    RunningServer rs(all_services);
    TcpClient c(rs.tcp("adder"));
    c.send(std::string("\xff\xfd\x03\xff\xfb\x18") + "2\xff\xf1+2\r\n");
    CHECK(c.recv_exact(3) == "4\r\n");
}

TEST_CASE("adder over UDP: one datagram is one line") {
    RunningServer rs(all_services);
    UdpClient u(rs.udp("adder"));
    u.send("50,40");
    CHECK(u.recv() == std::optional<std::string>("90"));
    u.send("50,40\n");
    CHECK(u.recv() == std::optional<std::string>("90\n"));
    u.send("x\r\n");
    CHECK(u.recv() == std::optional<std::string>("ERR not a number: \"x\"\r\n"));
}

TEST_CASE("hello: banner and a reply per line") {
    RunningServer rs(all_services);
    TcpClient c(rs.tcp("hello"));
    CHECK(c.recv_exact(23) == "Hi, we are connected!\r\n");
    c.send("hi\n");
    CHECK(c.recv_exact(6) == "hello\n");
    c.send("hi again\r\n");
    CHECK(c.recv_exact(7) == "hello\r\n");
    UdpClient u(rs.udp("hello"));
    u.send("hi");
    CHECK(u.recv() == std::optional<std::string>("hello"));
}

TEST_CASE("hello with close_after_banner") {
    RunningServer rs(all_services);
    TcpClient c(rs.tcp("thanks"));
    CHECK(c.recv_all() == "Thank you for connecting\r\n");
}

TEST_CASE("the seeds' clients: send without newline and wait for the reply") {
    RunningServer rs(all_services);
    {  // s.sendall('50,40'); s.recv(1024)
        TcpClient s(rs.tcp("adder"));
        s.send("50,40");
        CHECK(s.recv_some() == "90");
    }
    {  // the hi-hello client: the banner, then 'hi' -> 'hello'
        TcpClient s(rs.tcp("hello"));
        CHECK(s.recv_exact(23) == "Hi, we are connected!\r\n");
        s.send("hi");
        CHECK(s.recv_some() == "hello");
    }
    {  // uppercase
        TcpClient s(rs.tcp("uppercase"));
        s.send("hello world");
        CHECK(s.recv_exact(11) == "HELLO WORLD");
    }
}

TEST_CASE("discard drops everything over TCP and UDP") {
    RunningServer rs(all_services);
    TcpClient c(rs.tcp("discard"));
    c.send(std::string(1 << 20, 'd'));
    c.shutdown_write();
    CHECK(c.recv_all() == "");
    UdpClient u(rs.udp("discard"));
    u.send("anything");
    CHECK_FALSE(u.recv(300ms).has_value());
}

TEST_CASE("chargen: the first 100 lines of the RFC 864 pattern") {
    RunningServer rs(all_services);
    TcpClient c(rs.tcp("chargen"));
    auto got = c.recv_exact(100 * 74);
    std::string want;
    for (int line = 0; line < 100; ++line) {
        for (int k = 0; k < 72; ++k) want.push_back(static_cast<char>(' ' + (line + k) % 95));
        want += "\r\n";
    }
    const auto diff = std::mismatch(got.begin(), got.end(), want.begin()).first - got.begin();
    INFO("first difference at byte " << diff);
    CHECK(got == want);
    CHECK(got.substr(0, 95 * 74) == chargen_period());
}

TEST_CASE("chargen: a client that never reads costs the server no memory") {
    RunningServer rs(all_services);
    TcpClient c(rs.tcp("chargen"));
    std::this_thread::sleep_for(300ms);
    const long before = rss_kib();
    std::this_thread::sleep_for(1500ms);
    const long after = rss_kib();
    INFO("RSS before " << before << " KiB, after " << after << " KiB");
    CHECK(after - before < 4096);
    // What reached us is only what the socket buffers hold.
    std::size_t queued = 0;
    char buf[65536];
    for (;;) {
        ssize_t n = ::recv(c.fd(), buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) break;
        queued += static_cast<std::size_t>(n);
        if (queued > (64u << 20)) break;
    }
    INFO("bytes queued while not reading: " << queued);
    CHECK(queued < (32u << 20));
}

TEST_CASE("chargen over UDP: 0 to 512 characters of the pattern") {
    RunningServer rs(all_services);
    UdpClient u(rs.udp("chargen"));
    std::size_t longest = 0;
    for (int i = 0; i < 50; ++i) {
        u.send("");
        auto reply = u.recv();
        REQUIRE(reply);
        REQUIRE(reply->size() <= 512);
        CHECK(*reply == chargen_period().substr(0, reply->size()));
        longest = std::max(longest, reply->size());
    }
    CHECK(longest > 0);
}

TEST_CASE("200 clients over all the services at once on one event loop") {
    RunningServer rs(all_services);
    std::atomic<int> good{0};
    std::vector<std::thread> threads;
    std::mutex failures_mutex;
    std::vector<std::string> failures;
    for (int i = 0; i < 200; ++i) {
        threads.emplace_back([&, i] {
            try {
                bool ok = false;
                switch (i % 8) {
                case 0: {
                    TcpClient c(rs.tcp("adder"));
                    c.send(std::to_string(i) + "," + std::to_string(i) + "\n");
                    ok = c.recv_exact(std::to_string(2 * i).size() + 1) == std::to_string(2 * i) + "\n";
                    break;
                }
                case 1: {
                    TcpClient c(rs.tcp("uppercase"));
                    c.send("client " + std::to_string(i) + " ß");
                    auto want = "CLIENT " + std::to_string(i) + " SS";
                    ok = c.recv_exact(want.size()) == want;
                    break;
                }
                case 2: {
                    TcpClient c(rs.tcp("hello"));
                    c.send("x\n");
                    ok = c.recv_exact(29) == "Hi, we are connected!\r\nhello\n";
                    break;
                }
                case 3: {
                    TcpClient c(rs.tcp("daytime"));
                    ok = seconds_off(c.recv_all(), "%a %b %e %H:%M:%S %Y", false) <= 2;
                    break;
                }
                case 4: {
                    TcpClient c(rs.tcp("time"));
                    ok = c.recv_all().size() == 4;
                    break;
                }
                case 5: {
                    TcpClient c(rs.tcp("chargen"));
                    ok = c.recv_exact(740) == std::string(chargen_period().substr(0, 740));
                    break;
                }
                case 6: {
                    TcpClient c(rs.tcp("discard"));
                    c.send("gone");
                    c.shutdown_write();
                    ok = c.recv_all().empty();
                    break;
                }
                case 7: {
                    UdpClient u(rs.udp("adder"));
                    u.send(std::to_string(i) + " 1");
                    auto reply = u.recv(3s);
                    ok = reply == std::to_string(i + 1);
                    break;
                }
                }
                if (ok) ++good;
                else {
                    std::lock_guard lock(failures_mutex);
                    failures.push_back("client " + std::to_string(i) + ": wrong answer");
                }
            } catch (const std::exception& e) {
                std::lock_guard lock(failures_mutex);
                failures.push_back("client " + std::to_string(i) + ": " + e.what());
            }
        });
    }
    for (auto& t : threads) t.join();
    for (const auto& f : failures) UNSCOPED_INFO(f);
    CHECK(good == 200);
}

TEST_CASE("idle_timeout also ends a session waiting out line_idle (cancellation reaches a timed read)") {
    RunningServer rs("[hello]\ntcp = 127.0.0.1:0\nline_idle = 10s\nidle_timeout = 300ms\n");
    TcpClient c(rs.tcp("hello"));
    CHECK(c.recv_exact(23) == "Hi, we are connected!\r\n");
    const auto start = std::chrono::steady_clock::now();
    c.send("hi");  // a partial line: the server now reads with a 10 s line_idle timeout
    CHECK(c.closed_within(5s));
    CHECK(std::chrono::steady_clock::now() - start < 3s);
}

TEST_CASE("line_timeout closes a client that trickles a line that never ends") {
    // files has no line_idle: a slowloris client keeps the connection busy
    // (so idle_timeout never fires) but never completes a line.
    RunningServer rs("[files]\ntcp = 127.0.0.1:0\nroot = /tmp\nline_timeout = 600ms\nidle_timeout = 10s\n");
    TcpClient slow(rs.tcp("files"));
    const auto start = std::chrono::steady_clock::now();
    bool closed = false;
    for (int i = 0; i < 40 && !closed; ++i) {  // one byte every 100 ms, for up to 4 s
        try {
            slow.send("L");
        } catch (const std::exception&) {
            closed = true;
            break;
        }
        closed = slow.closed_within(100ms);
    }
    CHECK(closed);
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(took >= 500ms);
    CHECK(took < 2500ms);
    // A client that completes its lines in time is not affected.
    TcpClient fine(rs.tcp("files"));
    for (int i = 0; i < 8; ++i) {
        fine.send("SIZE nothing-here\n");
        CHECK(fine.recv_exact(14) == "ERR not found\n");
        std::this_thread::sleep_for(100ms);
    }
}

TEST_CASE("line_timeout also bounds the discarded rest of an overlong line") {
    RunningServer rs("[adder]\ntcp = 127.0.0.1:0\nmax_line = 10\nline_timeout = 600ms\n");
    TcpClient c(rs.tcp("adder"));
    c.send(std::string(20, '1'));
    CHECK(c.recv_exact(33) == "ERR line too long (max 10 bytes)\n");
    bool closed = false;
    for (int i = 0; i < 40 && !closed; ++i) {
        try {
            c.send("1");
        } catch (const std::exception&) {
            closed = true;
            break;
        }
        closed = c.closed_within(100ms);
    }
    CHECK(closed);
}

TEST_CASE("hostile input: a number of a million digits is refused quickly") {
    RunningServer rs("[adder]\ntcp = 127.0.0.1:0\nmax_line = 2000000\n");
    TcpClient c(rs.tcp("adder"));
    const auto start = std::chrono::steady_clock::now();
    c.send(std::string(1'000'000, '9') + ",1\n");
    const std::string reply = "ERR number too long: \"" + std::string(40, '9') + "...\" (max 1000 digits)\n";
    CHECK(c.recv_exact(reply.size(), 20s) == reply);
    CHECK(std::chrono::steady_clock::now() - start < 10s);
    c.send("1,2\n");
    CHECK(c.recv_exact(2) == "3\n");
}

TEST_CASE("hostile input: a path of 100000 components") {
    RunningServer rs("[files]\ntcp = 127.0.0.1:0\nroot = /tmp\nmax_line = 300000\n");
    TcpClient c(rs.tcp("files"));
    std::string path;
    for (int i = 0; i < 100'000; ++i) path += "a/";
    c.send("GET " + path + "x\n");
    CHECK(c.recv_exact(14) == "ERR not found\n");
    c.send("QUIT\n");
    CHECK(c.recv_exact(7) == "OK bye\n");
}

TEST_CASE("hostile input: a flood of telnet IAC sequences and NUL bytes") {
    RunningServer rs("[adder]\ntcp = 127.0.0.1:0\n");
    TcpClient c(rs.tcp("adder"));
    std::string flood;
    for (int i = 0; i < 200'000; ++i) flood += "\xff\xf1";  // IAC NOP, 400 KB, all removed
    c.send(flood + "2+2\n");
    CHECK(c.recv_exact(2, 20s) == "4\n");
    c.send(std::string("1\0", 2) + "2\n");
    CHECK(c.recv_exact(24) == std::string("ERR not a number: \"1\0", 21) + "2\"\n");
}

namespace {

std::size_t open_fds() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

// Closes with a reset (RST) instead of FIN, as a crashed or hostile client does.
void reset(TcpClient& c) {
    linger l{1, 0};
    ::setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

}  // namespace

TEST_CASE("resets mid-write, mid-read and mid-upload leak no descriptor and leave no file") {
    char tmpl[] = "/tmp/coserve-rst-XXXXXX";
    const std::string dir = ::mkdtemp(tmpl);
    {
        std::ofstream big(dir + "/big.bin", std::ios::binary);
        big << std::string(32u << 20, 'b');
    }
    RunningServer rs("[echo]\ntcp = 127.0.0.1:0\n[files]\ntcp = 127.0.0.1:0\nroot = " + dir +
                     "\nallow_upload = true\n[chat]\ntcp = 127.0.0.1:0\n");
    {  // warm-up, so lazily opened descriptors are counted in the baseline
        TcpClient e(rs.tcp("echo"));
        e.send("x");
        e.recv_exact(1);
    }
    std::this_thread::sleep_for(200ms);
    const auto baseline = open_fds();
    for (int round = 0; round < 5; ++round) {
        INFO("round " << round);
        {  // echo: the server is blocked writing to a client that does not read
            TcpClient c(rs.tcp("echo"));
            std::string chunk(1 << 20, 'e');
            for (int i = 0; i < 8; ++i) ::send(c.fd(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            reset(c);
        }
        {  // files: a download cut in the middle
            INFO("download");
            TcpClient c(rs.tcp("files"));
            c.send("GET big.bin\n");
            c.recv_exact(1 << 16);
            reset(c);
        }
        {  // files: an upload cut in the middle
            INFO("upload");
            TcpClient c(rs.tcp("files"));
            c.send("PUT up.bin 1000000\n");
            CHECK(c.recv_exact(8) == "OK send\n");
            c.send(std::string(400000, 'u'));
            reset(c);
        }
        {  // chat: a member gone while others talk to it
            INFO("chat");
            // b connects once a is in: two connections at once may be
            // served by different event loops and join in either order.
            LineClient a(rs.tcp("chat"));
            {
                INFO("a's welcome");
                a.line();
            }
            LineClient b(rs.tcp("chat"));
            {
                INFO("b's welcome");
                b.line();
            }
            {
                INFO("b's join, told to a");
                a.line();
            }
            for (int i = 0; i < 50; ++i) a.send_line("to b " + std::to_string(i));
            reset(b.tcp());
        }
    }
    std::size_t now = 0;
    for (int i = 0; i < 50; ++i) {  // the server notices each reset on its next operation
        std::this_thread::sleep_for(100ms);
        now = open_fds();
        if (now <= baseline && rs.server().connections() == 0) break;
    }
    INFO("descriptors: baseline " << baseline << ", after " << now);
    CHECK(now <= baseline);
    CHECK(rs.server().connections() == 0);
    std::size_t leftovers = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) leftovers += e.path().filename() != "big.bin";
    CHECK(leftovers == 0);  // no upload, complete or partial, and no temporary file
    std::filesystem::remove_all(dir);
}

namespace {

// Sends `data` as fast as the server takes it while a second thread reads and
// throws away whatever comes back (so an echoing server never blocks on us),
// then half-closes and waits for the end. A server that closes or resets
// early is fine: the point is what happens to the server.
void hurl(const boost::asio::ip::tcp::endpoint& to, const std::string& data) {
    TcpClient c(to);
    std::atomic<bool> done{false};
    std::thread reader([&] {
        char buf[65536];
        while (!done) {
            pollfd p{c.fd(), POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            if (::recv(c.fd(), buf, sizeof buf, 0) <= 0) break;
        }
    });
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (std::size_t off = 0; off < data.size() && std::chrono::steady_clock::now() < deadline;) {
        pollfd p{c.fd(), POLLOUT, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        const ssize_t n = ::send(c.fd(), data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) break;  // closed or reset by the server
        off += static_cast<std::size_t>(n);
    }
    ::shutdown(c.fd(), SHUT_WR);
    std::this_thread::sleep_for(200ms);
    done = true;
    reader.join();
}

}  // namespace

TEST_CASE("hostile input matrix: every TCP service survives every kind of junk and still serves") {
    char tmpl[] = "/tmp/coserve-junk-XXXXXX";
    const std::string dir = ::mkdtemp(tmpl);
    { std::ofstream(dir + "/f.txt") << "file\n"; }
    RunningServer rs(std::string(all_services) + "[echo]\ntcp = 127.0.0.1:0\n[chat]\ntcp = 127.0.0.1:0\n[files]\ntcp = 127.0.0.1:0\nroot = " + dir + "\n");

    std::string iac, invalid_utf8, path;
    for (int i = 0; i < 100'000; ++i) iac += "\xff\xfb\x01\xff\xfa\x18\x01\xff\xf0";  // WILL and SB ... SE, 900 KB
    std::mt19937 rng(7);
    for (int i = 0; i < 1 << 16; ++i) invalid_utf8 += static_cast<char>(0x80 | (rng() & 0x7f));
    for (int i = 0; i < 100'000; ++i) path += "a/";
    const std::vector<std::pair<const char*, std::string>> junk{
        {"a 10 MiB line", std::string(10u << 20, 'x') + "\n"},
        {"NUL bytes", std::string(1 << 16, '\0') + "\n"},
        {"invalid UTF-8", invalid_utf8 + "\n"},
        {"a telnet IAC flood", iac + "\n"},
        {"a number of a million digits", std::string(1'000'000, '9') + ",1\n"},
        {"a path of 100000 components", "GET " + path + "x\n/join " + path + "\n"},
        {"CR and LF storms", std::string(1 << 18, '\r') + std::string(1 << 18, '\n')},
    };
    // What a normal client gets afterwards, per service: a request and the start of the reply.
    const std::vector<std::tuple<const char*, std::string, std::string>> services{
        {"echo", "ping\n", "ping\n"},
        {"uppercase", "ping\n", "PING\n"},
        {"adder", "1,2\n", "3\n"},
        {"hello", "", "Hi, we are connected!"},
        {"daytime", "", ""},
        {"time", "", ""},
        {"chargen", "", std::string(chargen_period().substr(0, 10))},
        {"chat", "", "* welcome to #lobby"},
        {"files", "GET f.txt\n", "OK 5\nfile\n"},
        {"discard", "", ""},
    };
    for (const auto& [name, request, expected] : services) {
        for (const auto& [what, bytes] : junk) {
            INFO(name << " after " << what);
            hurl(rs.tcp(name), bytes);
            TcpClient c(rs.tcp(name));
            if (!request.empty()) c.send(request);
            if (std::string_view(name) == "discard") {
                CHECK_FALSE(c.closed_within(100ms));  // still connected, still quiet
            } else if (std::string_view(name) == "daytime" || std::string_view(name) == "time") {
                CHECK_FALSE(c.recv_all().empty());
            } else {
                CHECK(c.recv_exact(expected.size()) == expected);
            }
        }
    }
    for (int i = 0; i < 100 && rs.server().connections() > 0; ++i) std::this_thread::sleep_for(50ms);
    CHECK(rs.server().connections() == 0);
    std::filesystem::remove_all(dir);
}
