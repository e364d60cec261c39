// Integration: the framework (accepting, limits, idle timeouts, shutdown,
// threads) through the echo service, on real loopback sockets.
#include <catch2/catch.hpp>

#include "support.hpp"

#include <coserve/connection.hpp>
#include <coserve/service.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <vector>
#include <array>
#include <sstream>
#include <map>

#include <sys/socket.h>

using namespace testing;
namespace asio = boost::asio;

TEST_CASE("TCP echo: 100 concurrent clients each get 1 MiB of random bytes back exactly") {
    // All clients come from 127.0.0.1: the per-source limit (64 by default) is off here.
    RunningServer rs("[echo]\ntcp = 127.0.0.1:0\nmax_per_source = 0\n");
    const auto ep = rs.tcp("echo");
    constexpr int clients = 100;
    constexpr std::size_t size = 1 << 20;

    asio::io_context ioc;
    std::vector<std::string> sent(clients), received(clients);
    int finished = 0;
    for (int i = 0; i < clients; ++i) {
        sent[i] = random_bytes(size, static_cast<unsigned>(i + 1));
        // Writer and reader run concurrently on one socket, as a real client would.
        asio::co_spawn(
            ioc,
            [&, i]() -> asio::awaitable<void> {
                auto socket = std::make_shared<asio::ip::tcp::socket>(ioc);
                co_await socket->async_connect(ep, asio::use_awaitable);
                asio::co_spawn(
                    ioc,
                    [socket, &data = sent[i]]() -> asio::awaitable<void> {
                        for (std::size_t off = 0; off < data.size(); off += 65536)
                            co_await asio::async_write(*socket, asio::buffer(data.data() + off, 65536),
                                                       asio::use_awaitable);
                        socket->shutdown(asio::ip::tcp::socket::shutdown_send);
                    },
                    asio::detached);
                auto& out = received[i];
                out.resize(size + 1);  // one spare byte: the server must send no more than it got
                auto [ec, n] = co_await asio::async_read(*socket, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
                out.resize(n);
                ++finished;
            },
            asio::detached);
    }
    ioc.run_for(120s);
    REQUIRE(finished == clients);
    for (int i = 0; i < clients; ++i) {
        INFO("client " << i);
        REQUIRE(received[i].size() == size);
        REQUIRE(received[i] == sent[i]);
    }
}

TEST_CASE("TCP echo: half-close finishes the echo and then the server closes") {
    RunningServer rs("[echo]\ntcp = 127.0.0.1:0\n");
    TcpClient c(rs.tcp("echo"));
    c.send("hello\n");
    CHECK(c.recv_exact(6) == "hello\n");
    c.send("last words");
    c.shutdown_write();
    CHECK(c.recv_all() == "last words");
}

TEST_CASE("TCP echo: data and the end of stream in one go, around the 128-byte read buffer, all echoed before the close") {
    // read_shared() reads 128 bytes into the connection's buffer, then what
    // else is there into the loop's; a FIN found by that second read is kept
    // for the next call (the bytes first). Sizes on both sides of 128.
    RunningServer rs("[echo]\ntcp = 127.0.0.1:0\n");
    for (const std::size_t size : {1u, 127u, 128u, 129u, 256u, 65536u, 70000u}) {
        INFO("size " << size);
        std::string data(size, '\0');
        for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>('a' + i % 26);
        TcpClient c(rs.tcp("echo"));
        c.send(data);
        c.shutdown_write();
        CHECK(c.recv_all() == data);
    }
}

TEST_CASE("TCP echo: 40 connections in lock step switch between 4 KiB and 64 B messages, every byte back in order") {
    // read_shared() reads 128 bytes into the connection's buffer and the rest
    // of a 4 KiB message into the loop's buffer, shared by every connection of
    // the loop: 40 connections whose messages all arrive at once check that
    // no connection's bytes end up in another's reply, and switching sizes
    // keeps every byte in order.
    RunningServer rs("[echo]\ntcp = 127.0.0.1:0\n");
    std::vector<TcpClient> clients;
    for (int i = 0; i < 40; ++i) clients.emplace_back(rs.tcp("echo"));
    for (int round = 0; round < 30; ++round) {
        const std::size_t size = (round / 5) % 2 == 0 ? 4096 : 64;
        std::vector<std::string> sent;
        for (std::size_t i = 0; i < clients.size(); ++i) {
            sent.push_back(random_bytes(size, static_cast<int>(round * 100 + i)));
            clients[i].send(sent.back());
        }
        for (std::size_t i = 0; i < clients.size(); ++i) {
            INFO("round " << round << ", client " << i << ", " << size << " bytes");
            REQUIRE(clients[i].recv_exact(size) == sent[i]);
        }
    }
}

TEST_CASE("TCP echo over IPv6") {
    RunningServer rs("[echo]\ntcp = [::1]:0\nudp = [::1]:0\n");
    REQUIRE(rs.tcp("echo").address().is_v6());
    TcpClient c(rs.tcp("echo"));
    c.send("over six\n");
    CHECK(c.recv_exact(9) == "over six\n");
    UdpClient u(rs.udp("echo"));
    u.send("datagram six");
    CHECK(u.recv() == std::optional<std::string>("datagram six"));
}

TEST_CASE("a wildcard endpoint accepts IPv4 and IPv6") {
    RunningServer rs("[echo]\ntcp = *:0\n");
    auto port = rs.tcp("echo").port();
    TcpClient v4(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    TcpClient v6(asio::ip::tcp::endpoint(asio::ip::make_address("::1"), port));
    v4.send("4");
    v6.send("6");
    CHECK(v4.recv_exact(1) == "4");
    CHECK(v6.recv_exact(1) == "6");
}

TEST_CASE("UDP echo of 1000 datagrams") {
    // One source sending 1000 datagrams: the per-source udp_rate (100/s) is off here.
    RunningServer rs("[echo]\nudp = 127.0.0.1:0\nudp_rate = 0\n");
    UdpClient u(rs.udp("echo"));
    int echoed = 0;
    for (int i = 0; i < 1000; ++i) {
        auto msg = "datagram " + std::to_string(i) + " " + random_bytes(static_cast<std::size_t>(i % 1400), i);
        u.send(msg);
        auto reply = u.recv();
        REQUIRE(reply.has_value());
        REQUIRE(*reply == msg);
        ++echoed;
    }
    CHECK(echoed == 1000);
    u.send("");  // an empty datagram is echoed as an empty datagram
    CHECK(u.recv() == std::optional<std::string>(""));
}

TEST_CASE("UDP echo in batches: many datagrams in flight come back in order per source and the largest whole") {
    // udp_batch datagrams are taken per recvmmsg and answered per sendmmsg;
    // 1 is the plain path, 16 the default, 256 the maximum.
    for (const char* batch : {"1", "16", "256"}) {
        INFO("udp_batch = " << batch);
        RunningServer rs(std::string("[echo]\nudp = 127.0.0.1:0\nudp_rate = 0\nudp_batch = ") + batch + "\n");
        std::vector<std::unique_ptr<UdpClient>> clients;
        for (int c = 0; c < 4; ++c) clients.push_back(std::make_unique<UdpClient>(rs.udp("echo")));
        for (int i = 0; i < 50; ++i)
            for (int c = 0; c < 4; ++c) clients[static_cast<std::size_t>(c)]->send("c" + std::to_string(c) + " #" + std::to_string(i));
        for (int c = 0; c < 4; ++c)
            for (int i = 0; i < 50; ++i) {
                auto reply = clients[static_cast<std::size_t>(c)]->recv();
                REQUIRE(reply.has_value());
                REQUIRE(*reply == "c" + std::to_string(c) + " #" + std::to_string(i));
            }
        const std::string largest = random_bytes(65507, 7);  // the largest UDP payload over IPv4
        clients[0]->send(largest);
        auto reply = clients[0]->recv();
        REQUIRE(reply.has_value());
        CHECK(reply->size() == largest.size());
        CHECK(*reply == largest);
    }
}

TEST_CASE("idle_timeout closes a silent client but not an active one") {
    RunningServer rs("[echo]\ntcp = 127.0.0.1:0\nidle_timeout = 800ms\n");
    TcpClient active(rs.tcp("echo"));
    const auto start = std::chrono::steady_clock::now();
    TcpClient silent(rs.tcp("echo"));
    std::thread activity([&] {
        for (int i = 0; i < 14; ++i) {  // 14 x 100ms of activity: longer than the timeout
            active.send("x");
            REQUIRE(active.recv_exact(1) == "x");
            std::this_thread::sleep_for(100ms);
        }
    });
    const bool closed = silent.closed_within(3s);
    const auto waited = std::chrono::steady_clock::now() - start;
    activity.join();
    CHECK(closed);
    // The documented window for a client that never sent anything:
    // idle_timeout to idle_timeout plus one sweep period (a quarter of it),
    // with 300ms for this client's own wake-up on a busy machine
    // (ThreadSanitizer, two cores).
    CHECK(waited >= 800ms);
    CHECK(waited <= 1000ms + 300ms);
    active.send("still here");
    CHECK(active.recv_exact(10) == "still here");
}

namespace {
// coserve_connections_parked of [echo], once it equals `want` (within 5 s).
double parked_echo(RunningServer& rs, double want) {
    const std::string sample = "coserve_connections_parked{instance=\"echo\",service=\"echo\"}";
    return metric_value(scrape_until(rs, sample, want), sample);
}
}  // namespace

TEST_CASE("an echo connection parks while silent and answers when it speaks again, its bytes counted once") {
    RunningServer rs("[metrics]\nhttp = 127.0.0.1:0\n[echo]\ntcp = 127.0.0.1:0\nidle_timeout = 10s\n");
    TcpClient c(rs.tcp("echo"));
    CHECK(parked_echo(rs, 1) == 1);  // parked from accept: it has said nothing yet
    std::string sent;
    for (int round = 0; round < 3; ++round) {
        const auto msg = random_bytes(3000 + static_cast<std::size_t>(round), static_cast<unsigned>(round));
        c.send(msg);
        CHECK(c.recv_exact(msg.size()) == msg);
        sent += msg;
        CHECK(parked_echo(rs, 1) == 1);  // silent for a sweep period (1 s at idle_timeout = 10s): parked again
    }
    ::shutdown(c.fd(), SHUT_WR);  // the end of input wakes it too: it ends as echo does
    CHECK(c.closed_within(3s));
    CHECK(parked_echo(rs, 0) == 0);
    const std::string echo = "{instance=\"echo\",service=\"echo\"}";
    const auto after = scrape_until(rs, "coserve_connections_closed_total" + echo, 1);
    CHECK(metric_value(after, "coserve_connections_closed_total" + echo) == 1);
    CHECK(metric_value(after, "coserve_received_bytes_total" + echo) == static_cast<double>(sent.size()));
    CHECK(metric_value(after, "coserve_sent_bytes_total" + echo) == static_cast<double>(sent.size()));
    CHECK(metric_value(after, "coserve_connections_active" + echo) == 0);
}

TEST_CASE("parked connections: idle_timeout still closes them and so does shutdown after its grace") {
    RunningServer rs("[server]\nshutdown_grace = 300ms\n[metrics]\nhttp = 127.0.0.1:0\n"
                     "[echo]\ntcp = 127.0.0.1:0\nidle_timeout = 1200ms\n");
    TcpClient idle(rs.tcp("echo"));
    const auto begun = std::chrono::steady_clock::now();
    idle.send("x");
    REQUIRE(idle.recv_exact(1) == "x");
    CHECK(parked_echo(rs, 1) == 1);  // after a period (300 ms) of silence
    CHECK(idle.closed_within(3s));   // idle_timeout, not sooner
    CHECK(std::chrono::steady_clock::now() - begun >= 1200ms);
    std::vector<std::unique_ptr<TcpClient>> clients;
    for (int i = 0; i < 4; ++i) clients.push_back(std::make_unique<TcpClient>(rs.tcp("echo")));
    clients[0]->send("y");
    REQUIRE(clients[0]->recv_exact(1) == "y");
    CHECK(rs.stop_and_wait(10s));
    for (auto& c : clients) CHECK(c->closed_within(1s));
}

TEST_CASE("the 1001st connection beyond max_connections = 1000 is closed and the others keep working") {
    RunningServer rs("[echo]\ntcp = 127.0.0.1:0\nmax_connections = 1000\nmax_per_source = 0\n");
    const auto ep = rs.tcp("echo");
    std::vector<TcpClient> clients;
    clients.reserve(1000);
    for (int i = 0; i < 1000; ++i) clients.emplace_back(ep);
    // Each of the 1000 is served (so each holds its permit) before the extra one arrives.
    for (auto& c : clients) {
        c.send("p");
        REQUIRE(c.recv_exact(1) == "p");
    }
    TcpClient extra(ep);
    CHECK(extra.closed_within(5s));
    for (std::size_t i = 0; i < clients.size(); i += 37) {
        clients[i].send("ok");
        REQUIRE(clients[i].recv_exact(2) == "ok");
    }
    // When one leaves, a newcomer gets its place.
    clients.pop_back();
    std::this_thread::sleep_for(200ms);
    TcpClient newcomer(ep);
    newcomer.send("in");
    CHECK(newcomer.recv_exact(2) == "in");
}

TEST_CASE("the process-wide max_connections applies across instances") {
    RunningServer rs(
        "[server]\nmax_connections = 3\n[echo]\ntcp = 127.0.0.1:0\n[echo2]\nservice = echo\ntcp = 127.0.0.1:0\n");
    TcpClient a(rs.tcp("echo")), b(rs.tcp("echo")), c(rs.tcp("echo2"));
    for (auto* x : {&a, &b, &c}) {
        x->send("1");
        REQUIRE(x->recv_exact(1) == "1");
    }
    TcpClient d(rs.tcp("echo2"));
    CHECK(d.closed_within(5s));
    CHECK(rs.server().connections() == 3);
}

TEST_CASE("a client that sends but never reads does not grow the server") {
    RunningServer rs("[echo]\ntcp = 127.0.0.1:0\n");
    TcpClient c(rs.tcp("echo"));
    // Send until the kernel buffers on both sides are full: the server stops
    // reading once its write blocks, so our sends stall rather than the
    // server buffering without bound.
    int flags = 0;
    (void)flags;
    std::string chunk(65536, 'z');
    std::size_t sent = 0;
    for (int i = 0; i < 4096; ++i) {  // at most 256 MiB
        ssize_t n = ::send(c.fd(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            std::this_thread::sleep_for(50ms);  // let the server drain what it can
            n = ::send(c.fd(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n < 0) break;
        }
        sent += static_cast<std::size_t>(n);
    }
    INFO("accepted by the kernel and server before blocking: " << sent);
    CHECK(sent < (64u << 20));  // socket buffers only, far from the 256 MiB offered
    // Reading resumes the echo, byte for byte.
    auto back = c.recv_exact(sent, 60s);
    CHECK(back == std::string(sent, 'z'));
}

TEST_CASE("graceful stop: open connections keep working during the grace period and then close") {
    RunningServer rs("[server]\nshutdown_grace = 500ms\n[echo]\ntcp = 127.0.0.1:0\n");
    const auto ep = rs.tcp("echo");
    TcpClient c(ep);
    c.send("a");
    REQUIRE(c.recv_exact(1) == "a");
    rs.server().stop();
    std::this_thread::sleep_for(100ms);
    c.send("b");  // still served during the grace period
    CHECK(c.recv_exact(1) == "b");
    // New connections are refused: the listener closed at once.
    CHECK_THROWS(TcpClient(ep));
    CHECK(c.closed_within(3s));
    CHECK(rs.stop_and_wait(5s));
}

TEST_CASE("graceful stop returns at once when nothing is connected") {
    RunningServer rs("[server]\nshutdown_grace = 30s\n[echo]\ntcp = 127.0.0.1:0\nudp = 127.0.0.1:0\n");
    auto t0 = std::chrono::steady_clock::now();
    CHECK(rs.stop_and_wait(5s));
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
}

TEST_CASE("a port already in use fails start() and leaves nothing bound") {
    RunningServer first("[echo]\ntcp = 127.0.0.1:0\n");
    const auto taken = first.tcp("echo").port();
    // A port that is free now: bound by [a] before [b] fails on `taken`.
    asio::io_context ioc;
    asio::ip::tcp::acceptor probe(ioc, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const auto free_port = probe.local_endpoint().port();
    probe.close();
    auto config = coserve::load_config_text("[a]\nservice = echo\ntcp = 127.0.0.1:" + std::to_string(free_port) +
                                            "\n[b]\nservice = echo\ntcp = 127.0.0.1:" + std::to_string(taken) + "\n");
    coserve::Server second(std::move(config), testing::no_signals());
    CHECK_THROWS_WITH(second.start(), Catch::Contains("[b] tcp 127.0.0.1:" + std::to_string(taken) +
                                                      ": cannot bind: Address already in use"));
    // [a]'s listener was closed again: its port can be bound.
    asio::ip::tcp::acceptor again(ioc);
    again.open(asio::ip::tcp::v4());
    again.bind(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), free_port));
    again.listen();
    CHECK(again.is_open());
}

namespace {
void several_threads(const std::string& model) {
    RunningServer rs("[server]\nthreads = 4\nthread_model = " + model +
                     "\nshutdown_grace = 1s\n[echo]\ntcp = 127.0.0.1:0\nudp = 127.0.0.1:0\nidle_timeout = 400ms\n");
    std::vector<std::thread> threads;
    std::atomic<int> good{0};
    for (int t = 0; t < 16; ++t) {
        threads.emplace_back([&, t] {
            try {
                TcpClient c(rs.tcp("echo"));
                for (int i = 0; i < 50; ++i) {
                    auto msg = random_bytes(1000 + static_cast<std::size_t>(i), static_cast<unsigned>(t * 100 + i));
                    c.send(msg);
                    if (c.recv_exact(msg.size()) != msg) return;
                }
                UdpClient u(rs.udp("echo"));
                u.send("t" + std::to_string(t));
                if (u.recv() != "t" + std::to_string(t)) return;
                ++good;
            } catch (const std::exception& e) {
                UNSCOPED_INFO("client " << t << ": " << e.what());
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(good == 16);
    TcpClient silent(rs.tcp("echo"));
    CHECK(silent.closed_within(3s));
    TcpClient open(rs.tcp("echo"));
    open.send("x");
    REQUIRE(open.recv_exact(1) == "x");
    CHECK(rs.stop_and_wait(10s));
    CHECK(open.closed_within(1s));
}
}  // namespace

TEST_CASE("several event-loop threads: concurrent clients and UDP and idle sweep and shutdown") {
    several_threads("shared");
}

TEST_CASE("a loop per thread: concurrent clients and UDP and idle sweep and shutdown") {
    several_threads("per-thread");
}

namespace {
// Answers each read with the id of the thread serve() runs on.
class WhichThread final : public coserve::Service {
public:
    boost::asio::awaitable<void> serve(coserve::Connection& c) override {
        std::array<char, 64> buffer;
        while (co_await c.read_some(boost::asio::buffer(buffer))) {
            std::ostringstream id;
            id << std::this_thread::get_id() << '\n';
            co_await c.write(boost::asio::buffer(id.str()));
        }
    }
};
const coserve::ServiceType which_thread{
    "which_thread", [](coserve::Section&, const coserve::InstanceOptions&) -> std::unique_ptr<coserve::Service> {
        return std::make_unique<WhichThread>();
    }, true, false};
}  // namespace

TEST_CASE("a loop per thread: connections are dealt to every loop and each stays on its own") {
    if (!coserve::find_service_type("which_thread")) coserve::register_service(which_thread);
    RunningServer rs("[server]\nthreads = 3\nthread_model = per-thread\n[which_thread]\ntcp = 127.0.0.1:0\n");
    std::vector<std::unique_ptr<LineClient>> clients;
    std::vector<std::string> first;
    for (int i = 0; i < 6; ++i) {
        clients.push_back(std::make_unique<LineClient>(rs.tcp("which_thread")));
        clients.back()->send_line("x");
        first.push_back(clients.back()->line());
    }
    // In turn: six connections on three loops, two each, each on its own thread.
    std::map<std::string, int> per_thread;
    for (const auto& id : first) ++per_thread[id];
    CHECK(per_thread.size() == 3);
    for (const auto& [id, n] : per_thread) CHECK(n == 2);
    for (int round = 0; round < 20; ++round)
        for (std::size_t i = 0; i < clients.size(); ++i) {
            clients[i]->send_line("x");
            CHECK(clients[i]->line() == first[i]);
        }
}

TEST_CASE("a loop per thread: shutdown closes connections open on every loop after the grace") {
    RunningServer rs("[server]\nthreads = 3\nthread_model = per-thread\nshutdown_grace = 300ms\n"
                     "[echo]\ntcp = 127.0.0.1:0\n");
    // Dealt to the loops in turn: six connections, two on each, all open
    // and answering when the shutdown begins.
    std::vector<std::unique_ptr<TcpClient>> clients;
    for (int i = 0; i < 6; ++i) {
        clients.push_back(std::make_unique<TcpClient>(rs.tcp("echo")));
        clients.back()->send("c" + std::to_string(i));
        REQUIRE(clients.back()->recv_exact(2) == "c" + std::to_string(i));
    }
    const auto begun = std::chrono::steady_clock::now();
    CHECK(rs.stop_and_wait(10s));
    CHECK(std::chrono::steady_clock::now() - begun >= 250ms);  // the grace was given
    for (auto& c : clients) CHECK(c->closed_within(1s));
}
