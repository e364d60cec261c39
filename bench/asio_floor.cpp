// asio-floor: the least a TCP echo costs in Boost.Asio 1.26, written three
// ways, for scripts/bench's callgrind case (docs/benchmarks.md, "Part 15").
// Not a server to use: no limits, no timeouts, no logging.
//
//   usage: asio-floor nested|deferred|callback [locking|unsafe-io|unsafe]
//
//   nested    a coroutine per connection that awaits a coroutine per read
//             and one per write (coserved's echo before part 15)
//   deferred  a coroutine per connection that awaits a deferred read, then
//             a plain non-blocking send (coserved's echo since part 15)
//   callback  a completion handler per read, no coroutine (Asio's floor)
//
// The second word is the io_context's concurrency hint: `locking` (1, the
// default), `unsafe-io` (no reactor locks: coserved with one thread) or
// `unsafe` (no scheduler locks either: nothing may post from another thread).
// Listens on 127.0.0.1 (an OS-chosen port, printed as "tcp PORT"); each
// coroutine variant holds a cancellation slot, as coserved's sessions do.
// SIGTERM or SIGINT stops it.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>

#include <array>
#include <cstdio>
#include <cstring>
#include <exception>
#include <list>
#include <memory>
#include <span>
#include <string_view>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// A coroutine's failure ends the program (out of io.run()) instead of vanishing.
void rethrow(std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
}

thread_local std::array<char, 65536> loop_buffer;

struct Connection {
    tcp::socket socket;
    std::array<char, 128> small{};

    explicit Connection(tcp::socket s) : socket(std::move(s)) { socket.non_blocking(true); }

    asio::awaitable<std::span<const char>> read_nested() {
        auto [ec, n] = co_await socket.async_read_some(asio::buffer(small), asio::as_tuple(asio::deferred));
        if (ec) co_return std::span<const char>();
        std::memcpy(loop_buffer.data(), small.data(), n);
        co_return std::span<const char>(loop_buffer.data(), n);
    }
    asio::awaitable<void> write_nested(std::span<const char> data) {
        send(data);
        co_return;
    }
    auto read_deferred() {
        return socket.async_read_some(asio::buffer(small), asio::deferred([this](boost::system::error_code ec, std::size_t n) {
            if (ec) n = 0;
            std::memcpy(loop_buffer.data(), small.data(), n);
            return asio::deferred.values(boost::system::error_code(), std::span<const char>(loop_buffer.data(), n));
        }));
    }
    void send(std::span<const char> data) {
        boost::system::error_code ec;  // a ping-pong client never fills the socket: no rest to keep
        socket.write_some(asio::buffer(data.data(), data.size()), ec);
    }
};

asio::awaitable<void> serve_nested(tcp::socket socket) {
    Connection c(std::move(socket));
    for (;;) {
        const auto data = co_await c.read_nested();
        if (data.empty()) co_return;
        co_await c.write_nested(data);
    }
}

asio::awaitable<void> serve_deferred(tcp::socket socket) {
    Connection c(std::move(socket));
    for (;;) {
        const auto data = co_await c.read_deferred();
        if (data.empty()) co_return;
        c.send(data);
    }
}

struct CallbackConnection : std::enable_shared_from_this<CallbackConnection> {
    Connection c;
    explicit CallbackConnection(tcp::socket s) : c(std::move(s)) {}
    void read() {
        c.socket.async_read_some(asio::buffer(c.small), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
            if (ec) return;
            self->c.send(std::span<const char>(self->c.small.data(), n));
            self->read();
        });
    }
};

}  // namespace

int main(int argc, char** argv) {
    const std::string_view variant = argc > 1 ? argv[1] : "";
    const std::string_view locking = argc > 2 ? argv[2] : "locking";
    if ((variant != "nested" && variant != "deferred" && variant != "callback") ||
        (locking != "locking" && locking != "unsafe-io" && locking != "unsafe")) {
        std::fprintf(stderr, "usage: asio-floor nested|deferred|callback [locking|unsafe-io|unsafe]\n");
        return 2;
    }
    const int hint = locking == "unsafe" ? BOOST_ASIO_CONCURRENCY_HINT_UNSAFE
                     : locking == "unsafe-io" ? BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO
                                              : 1;
    asio::io_context io(hint);
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    std::printf("tcp %u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
    std::fflush(stdout);
    asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](boost::system::error_code, int) { io.stop(); });
    std::list<asio::cancellation_signal> slots;  // one per session, never emitted: the cost of holding one
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            for (;;) {
                auto socket = co_await acceptor.async_accept(asio::deferred);
                boost::system::error_code ignored;  // a client already gone is not a failure of the loop
                socket.set_option(tcp::no_delay(true), ignored);
                if (variant == "callback") {
                    std::make_shared<CallbackConnection>(std::move(socket))->read();
                    continue;
                }
                auto session = variant == "nested" ? serve_nested(std::move(socket)) : serve_deferred(std::move(socket));
                asio::co_spawn(io, std::move(session), asio::bind_cancellation_slot(slots.emplace_back().slot(), rethrow));
            }
        },
        rethrow);
    io.run();
}
