// One accepted TCP connection, as a service sees it.
//
// Ownership: the framework's per-connection coroutine owns the connection
// (and through it the socket) and passes this handle by reference to
// Service::serve(); it lives until serve() returns. Do not keep references
// to it beyond that. The framework's state of the connection (socket,
// timers, buffers) is its own and not declared here.
//
// Threading: all calls happen on the connection's executor (a strand when the
// server runs several threads), except try_send(), which any thread may call
// while serve() runs; the idle sweep only takes back the activity mark.
//
// Reads and writes go through these members, never the raw socket, so the
// framework counts every byte and sees activity for `idle_timeout`. A
// service that needs to go below the byte stream does it through a named
// operation that keeps the counts and the stamp right: send_file()
// (sendfile), try_send() and wait_writable() (gathered non-blocking sends
// from other threads, as chat's broadcast makes), busy_turn() (a long
// computation). Every read is bounded in time: by idle_timeout always, and
// by an explicit timeout with read_some_for(). At shutdown or idle timeout
// the framework cancels the session's coroutine; the pending operation then
// throws operation_aborted, which the framework treats as a normal close.
#pragma once

#include <coserve/config.hpp>
#include <coserve/log.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace coserve {

namespace detail {
class Session;
}

class Connection {
public:
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    const std::string& peer() const noexcept;  // numeric "addr:port"
    const std::string& instance_name() const noexcept;
    const InstanceOptions& options() const noexcept;
    // The executor this connection's session runs on.
    const boost::asio::any_io_executor& executor() const noexcept;

    // Reads what is available (at least one byte). Returns 0 at end of stream
    // (the client half-closed). Throws boost::system::system_error on other errors.
    boost::asio::awaitable<std::size_t> read_some(boost::asio::mutable_buffer buffer);

    // Waits until the client has sent something, then reads what is there
    // into a buffer owned by the event-loop thread, so a connection waiting
    // for data owns only a 128-byte buffer, not a full one. Completes with
    // the bytes read, or an empty span at end of stream; `co_await` it (it
    // throws boost::system::system_error on other errors). The span is valid
    // only until the caller's next co_await: consume it, copy it, or hand it
    // to send_now()/write_now() first. An Asio deferred operation, not a
    // coroutine: awaiting it suspends the caller's own frame and makes no
    // frame of its own (the echo data path; docs/benchmarks.md).
    auto read_shared() {
        namespace asio = boost::asio;
        return asio::async_initiate<const asio::deferred_t&, void(boost::system::error_code, std::size_t)>(
                   SharedRead{this}, asio::deferred) |
               asio::deferred([this](boost::system::error_code ec, std::size_t n) {
                   // (The error goes as a code: Asio 1.26 cannot complete an awaited
                   // operation with (exception_ptr, T), which would let it say "read:".)
                   const auto data = finish_shared_read(ec, n);
                   return asio::deferred.values(ec, data);
               });
    }

    // Sends what the socket takes of `data` at once, without waiting, and
    // returns the rest: empty when all of it went; otherwise co_await
    // write_now(rest) before reading again. Over TLS it sends nothing and
    // returns `data` (write_now() encrypts). A plain call, no coroutine: the
    // common case of a reply that fits in the socket's buffer costs one
    // send(2). Throws boost::system::system_error when the client is gone.
    std::span<const char> send_now(std::span<const char> data);

    // Writes all of `data`: at once, as far as the socket takes it, and the
    // rest (copied first, so `data` may be read_shared()'s span) when the
    // client reads. Allocates only when the client is behind.
    boost::asio::awaitable<void> write_now(std::span<const char> data);

    // Like read_some, but gives up after `timeout` of silence: nullopt. Only
    // this read is cancelled then; other operations on the socket go on.
    boost::asio::awaitable<std::optional<std::size_t>> read_some_for(boost::asio::mutable_buffer buffer,
                                                                     Duration timeout);

    // Writes all of `buffers` (one gathered write of up to 16 buffers at a time).
    boost::asio::awaitable<void> write_gathered(std::span<const boost::asio::const_buffer> buffers);
    // Writes all of any const buffer sequence.
    template <class ConstBufferSequence>
    boost::asio::awaitable<void> write(const ConstBufferSequence& buffers) {
        std::array<boost::asio::const_buffer, 16> list;
        std::size_t n = 0;
        for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
            if (n == list.size()) {
                co_await write_gathered(list);
                n = 0;
            }
            list[n++] = boost::asio::const_buffer(*it);
        }
        co_await write_gathered(std::span<const boost::asio::const_buffer>(list.data(), n));
    }

    // Sends FIN after the last write (our half of a graceful close).
    void shutdown_send() noexcept;

    // Sends [offset, offset + count) of the open file `file` with sendfile(2):
    // what the socket takes, then a wait until it takes more; no copy and no
    // buffer, so a client that stops reading costs nothing but its socket.
    // Yields to the other connections every 16 MiB. Throws system_error when
    // the client is gone, runtime_error if the file shrank meanwhile.
    boost::asio::awaitable<void> send_file(int file, std::uint64_t offset, std::uint64_t count);

    // Lets the other connections run for a turn of the event loop, and counts
    // as activity: for a long computation between reads and writes.
    boost::asio::awaitable<void> busy_turn();

    // A non-blocking gathered send, from any thread while serve() runs (the
    // service must stop calling it before serve() returns): the bytes the
    // socket took (0: it is full; wait_writable()), or nullopt when the
    // client is gone or the connection is encrypted(). Counts the bytes and
    // stamps activity.
    std::optional<std::size_t> try_send(std::span<const iovec> data) noexcept;
    // Waits until the socket takes more. Throws operation_aborted when cancelled.
    boost::asio::awaitable<void> wait_writable();
    // Cancels what is pending on the connection (reads, wait_writable): it
    // throws, or returns, operation_aborted.
    void cancel() noexcept;

    std::uint64_t bytes_in() const noexcept;
    std::uint64_t bytes_out() const noexcept;

    // A log line naming the instance and the peer (and, over TLS, a verified
    // client certificate's subject).
    log::Line log(Severity level) const;

    // TLS (a `tls =` listener): the handshake is done before serve() runs,
    // and every member above reads and writes through it, byte for byte as
    // without it. try_send() is plaintext only (nullopt here: the session's
    // own coroutine must write); send_file() copies through a bounded buffer
    // instead of sendfile; shutdown_send() sends close_notify, then FIN,
    // once serve() returns.
    bool encrypted() const noexcept;
    // The front-end whose listener accepted the connection (ServiceType::
    // front_ends: "irc" for `irc` and `irc_tls`); empty for `tcp` and `tls`.
    std::string_view front_end() const noexcept;
    // Why the framework cancelled the session ("idle timeout", "closed at
    // shutdown"), for a service that tells its client before it goes (chat's
    // WebSocket close frame); empty while it has not.
    std::string_view cancel_reason() const noexcept;
    // The subject (RFC 2253) of the client's certificate when it sent one and
    // it was verified (tls_client_auth); empty otherwise.
    const std::string& tls_subject() const noexcept;

private:
    friend class detail::Session;
    // read_shared()'s read: on the socket directly (its handler is the
    // caller's, so its executor, cancellation and allocator are kept);
    // through TLS, or after the end was seen, by the out-of-line path.
    struct SharedRead {
        Connection* c;
        template <class Handler>
        void operator()(Handler&& handler) const {
            if (auto* socket = c->plain_read_socket())
                socket->async_read_some(c->small_buffer(), std::forward<Handler>(handler));
            else
                c->start_other_read(boost::asio::any_completion_handler<void(boost::system::error_code, std::size_t)>(
                    std::forward<Handler>(handler)));
        }
    };
    boost::asio::ip::tcp::socket* plain_read_socket() noexcept;  // null: TLS, or the end already seen
    boost::asio::mutable_buffer small_buffer() noexcept;
    void start_other_read(boost::asio::any_completion_handler<void(boost::system::error_code, std::size_t)> handler);
    // After the read: the rest of what is there into the loop's buffer, the
    // counts and the activity mark; `ec` cleared at end of stream.
    std::span<const char> finish_shared_read(boost::system::error_code& ec, std::size_t n);

    explicit Connection(detail::Session& session) noexcept : s_(session) {}
    detail::Session& s_;
};

// True for the errors that end a connection normally: EOF, reset by peer,
// broken pipe, cancellation at shutdown or idle timeout.
bool is_normal_close(const boost::system::error_code& ec) noexcept;

}  // namespace coserve
