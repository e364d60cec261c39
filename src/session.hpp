// Internal: the framework's state of one TCP connection, owned by the
// session coroutine (tcp.cpp, run_session) for the life of the session. The
// service sees only its Connection handle.
#pragma once

#include <coserve/connection.hpp>

#include "instance.hpp"

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace coserve::detail {

class Session {
public:
    // `peer`: as logged, when already known (a parked session resuming);
    // empty: read from the socket.
    Session(boost::asio::ip::tcp::socket socket, Instance& instance, SessionSlot& slot, std::string peer = {});
    Session(const Session&) = delete;
    ~Session() { slot.session = nullptr; }

    Connection& connection() noexcept { return connection_; }

    // On a TLS listener, before serve(): the handshake, bounded by
    // tls_handshake_timeout. False when it failed (counted by reason and
    // logged at most once a minute per source above debug). Throws
    // operation_aborted when the session is cancelled meanwhile.
    boost::asio::awaitable<bool> handshake(std::shared_ptr<const TlsContext> context);

    // On an instance with proxy_protocol on, first of all: the PROXY header,
    // read to its last byte and no further, within proxy_timeout. Returns the
    // client's endpoint (nullopt for LOCAL and the like: the proxy itself);
    // throws proxy::Error when the header is bad, late or cut short.
    boost::asio::awaitable<std::optional<boost::asio::ip::tcp::endpoint>> read_proxy_header();
    // The client the connection stands for, when a PROXY header named it:
    // peer(), the logs and the limits use it from now on.
    void set_peer(const boost::asio::ip::tcp::endpoint& client);

    // After serve() returned: with TLS, close_notify (never waiting more
    // than the second below for the client's); then FIN, then reads and
    // drops what the client still sends until it closes too (at most 1 s and
    // 64 KiB). Closing a socket with unread input would send a reset, which
    // can destroy our last bytes before the client reads them.
    boost::asio::awaitable<void> linger();

    // One read bounded by `timeout` (nullopt then), through TLS unless `raw`.
    boost::asio::awaitable<std::optional<std::size_t>> read_for(boost::asio::mutable_buffer buffer, Duration timeout,
                                                                bool raw = false);
    // Writes `data` through TLS, small buffers gathered into tls_out (one
    // record of up to 16 KiB instead of one each); tls_flush() writes tls_out.
    boost::asio::awaitable<void> tls_write(std::span<const boost::asio::const_buffer> data);
    boost::asio::awaitable<void> tls_flush();
    // Connection::send_file() over TLS: the file read in 16 KiB pieces.
    boost::asio::awaitable<void> tls_send_file(int file, std::uint64_t offset, std::uint64_t count);
    // Sends close_notify, waiting at most `limit` for it to go out and for
    // the client's (Asio's async_shutdown alone would wait forever).
    boost::asio::awaitable<void> tls_close(Duration limit);
    // Waits until no timer handler of ours is still queued, so destroying
    // the session cannot race with one.
    boost::asio::awaitable<void> quiesce();

    // Marks activity for the idle sweep: a flag, no clock read (SessionSlot).
    void touch() noexcept {
        if (!slot.active.load(std::memory_order_relaxed)) slot.active.store(true, std::memory_order_relaxed);
    }

    using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>;

    boost::asio::ip::tcp::socket socket;
    std::shared_ptr<const TlsContext> tls_context;  // kept for the session's life (the SSL object refers to it)
    std::unique_ptr<TlsStream> tls;                 // set by handshake(): reads and writes go through it
    std::string tls_subject;                        // a verified client certificate's subject
    std::string log_peer;                           // peer, and the client's subject when there is one
    std::vector<char> tls_out;                      // tls_write()'s gathering buffer
    bool send_closed = false;                       // shutdown_send() was called (TLS: close_notify in linger)
    boost::asio::any_io_executor executor;
    Instance& instance;
    SessionSlot& slot;
    std::string peer;
    std::string_view front_end;  // Connection::front_end(): Instance::kinds outlives the session
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;                      // on the executor
    std::atomic<std::uint64_t> bytes_out_shared{0};  // by try_send, from any thread
    boost::asio::steady_timer read_timer;
    boost::asio::cancellation_signal read_cancel;  // cancels the read of read_some_for() only
    unsigned timer_handlers = 0;                    // read_timer handlers not yet run
    unsigned read_generation = 0;
    bool timed_out = false;
    bool eof_pending = false;          // read_shared() saw the end after returning data
    bool waiting_input = false;        // in read_shared()'s wait on the plain socket (it may park)
    bool park_asked = false;           // the sweep cancelled that wait: the session parks
    std::array<char, 128> small{};     // read_shared()'s own buffer: one message of a chatty protocol

private:
    void arm_deadline(Duration timeout);  // on expiry: timed_out, and every operation on the socket cancelled
    void disarm_deadline();
    Connection connection_{*this};
};

}  // namespace coserve::detail
