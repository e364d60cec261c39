// One accepted TCP connection, as a service sees it.
//
// Ownership: the framework's per-connection coroutine owns the Connection (and
// through it the socket) by value, and passes it by reference to
// Service::serve(); it lives until serve() returns. Do not keep references to
// it beyond that.
//
// Threading: all calls on one Connection happen on its own executor (a strand
// when the server runs several threads); the framework's idle sweep only
// reads the activity stamp, atomically.
//
// Reads and writes go through these members rather than the raw socket, so the
// framework can count bytes and see activity for `idle_timeout`. Every read is
// bounded in time: by idle_timeout always, and by an explicit timeout with
// read_some_for(). At shutdown or idle timeout the framework cancels the
// session's coroutine; the pending operation then throws operation_aborted,
// which the framework treats as a normal close.
#pragma once

#include <coserve/config.hpp>
#include <coserve/log.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/system_error.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace coserve {

namespace detail {
struct Instance;
struct SessionSlot;
}

class Connection {
public:
    // Framework use: wraps an accepted socket for `instance`.
    Connection(boost::asio::ip::tcp::socket socket, detail::Instance& instance, detail::SessionSlot& slot);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // In non-blocking mode: a synchronous call on it returns would_block
    // instead of waiting (read_shared() and write_now() rely on this).
    boost::asio::ip::tcp::socket& socket() noexcept { return socket_; }
    const std::string& peer() const noexcept { return peer_; }  // numeric "addr:port"
    const std::string& instance_name() const noexcept;
    const InstanceOptions& options() const noexcept;

    // Reads what is available (at least one byte). Returns 0 at end of stream
    // (the client half-closed). Throws boost::system::system_error on other errors.
    boost::asio::awaitable<std::size_t> read_some(boost::asio::mutable_buffer buffer);

    // Waits until the client has sent something, then reads what is there
    // into a buffer owned by the event-loop thread, so a connection waiting
    // for data owns only a 128-byte buffer, not a full one. Returns the
    // bytes read, or an empty span at end of stream. The span is valid only
    // until the caller's next co_await: consume it, copy it, or hand it to
    // write_now() first.
    boost::asio::awaitable<std::span<const char>> read_shared();

    // Writes all of `data`: at once, as far as the socket takes it, and the
    // rest (copied first, so `data` may be read_shared()'s span) when the
    // client reads. Allocates only when the client is behind.
    boost::asio::awaitable<void> write_now(std::span<const char> data);

    // Like read_some, but gives up after `timeout` of silence: nullopt. Only
    // this read is cancelled then; other operations on the socket go on.
    boost::asio::awaitable<std::optional<std::size_t>> read_some_for(boost::asio::mutable_buffer buffer,
                                                                     Duration timeout);

    // Writes all of `buffers` (any const buffer sequence: one gathered write).
    template <class ConstBufferSequence>
    boost::asio::awaitable<void> write(const ConstBufferSequence& buffers) {
        auto [ec, n] = co_await boost::asio::async_write(
            socket_, buffers, boost::asio::as_tuple(boost::asio::deferred));
        bytes_out_ += n;
        touch();
        if (ec) throw boost::system::system_error(ec, "write");
    }

    // Sends FIN after the last write (our half of a graceful close).
    void shutdown_send() noexcept;

    // Framework use, after serve() returned: sends FIN, then reads and drops
    // what the client still sends until it closes too (at most 1 s and
    // 64 KiB). Closing a socket with unread input would send a reset, which
    // can destroy our last bytes before the client reads them.
    boost::asio::awaitable<void> linger();

    std::uint64_t bytes_in() const noexcept { return bytes_in_; }
    std::uint64_t bytes_out() const noexcept { return bytes_out_; }

    // For services that write to the socket themselves (chat writes through
    // its native handle from the sender's thread): account those bytes at the
    // end of the session (on the connection's executor).
    void add_bytes_out(std::uint64_t n) noexcept { bytes_out_ += n; }
    // Stamps activity for the idle sweep. Thread-safe: any thread may call it
    // while the session runs.
    void touch() noexcept;

    log::Line log(Severity level) const { return log::Line(level, instance_name(), peer_); }

    // Framework use.
    // Waits until no timer handler of ours is still queued, so destroying
    // the Connection cannot race with one.
    boost::asio::awaitable<void> quiesce();

private:

    boost::asio::ip::tcp::socket socket_;
    detail::Instance& instance_;
    detail::SessionSlot& slot_;
    std::string peer_;
    std::uint64_t bytes_in_ = 0;
    std::uint64_t bytes_out_ = 0;
    boost::asio::steady_timer read_timer_;
    boost::asio::cancellation_signal read_cancel_;  // cancels the read of read_some_for() only
    unsigned timer_handlers_ = 0;  // read_timer_ handlers not yet run
    unsigned read_generation_ = 0;
    bool timed_out_ = false;
    bool eof_pending_ = false;         // read_shared() saw the end after returning data
    std::array<char, 128> small_{};   // read_shared()'s own buffer: one message of a chatty protocol
};

// True for the errors that end a connection normally: EOF, reset by peer,
// broken pipe, cancellation at shutdown or idle timeout.
bool is_normal_close(const boost::system::error_code& ec) noexcept;

}  // namespace coserve
