// chat over WebSocket: a Connection as the byte stream under Boost.Beast.
//
// Beast reads the HTTP request and the WebSocket frames through this stream;
// the reads are the Connection's (counted, stamped for idle_timeout, bounded
// by a deadline while the request is read). Writes go straight to the
// connection until the chat member exists; from then on every byte Beast
// writes (a pong, the reply to the client's close) goes into the member's
// outbox as one raw message, so it never lands in the middle of a line that
// another member's broadcast is sending.
//
// Threading: the session's executor only. Cancellation: a read takes the
// cancellation slot of the operation that asked for it (the session's own,
// through Beast), so cancelling the session cancels the read and nothing else.
#pragma once

#include <coserve/connection.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/role.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace coserve::services::chat {

// Where the bytes Beast writes go once the chat member exists.
class RawSink {
public:
    virtual bool send_raw(std::string bytes) = 0;  // false: the member is gone

protected:
    ~RawSink() = default;
};

class ConnectionStream {
public:
    using executor_type = boost::asio::any_io_executor;
    using clock = std::chrono::steady_clock;

    explicit ConnectionStream(Connection& c) : c_(c) {}
    executor_type get_executor() const noexcept { return c_.executor(); }
    Connection& connection() noexcept { return c_; }

    // Reads give up (timed_out) at `deadline`; none: idle_timeout bounds them.
    void deadline(std::optional<clock::time_point> deadline) noexcept { deadline_ = deadline; }
    // Bytes read ahead (after the HTTP request) are read first.
    void unread(std::string bytes) { ahead_ = std::move(bytes); }
    // From now on, writes go to `sink` (a raw message in the member's outbox).
    void sink(RawSink* sink) noexcept { sink_ = sink; }

    template <class MutableBufferSequence, class ReadToken>
    auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
        return boost::asio::async_initiate<ReadToken, void(boost::system::error_code, std::size_t)>(
            [this](auto handler, const MutableBufferSequence& buffers) {
                boost::asio::mutable_buffer first;
                for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it)
                    if (const boost::asio::mutable_buffer b(*it); b.size() > 0) {
                        first = b;
                        break;
                    }
                auto slot = boost::asio::get_associated_cancellation_slot(handler);
                boost::asio::co_spawn(c_.executor(), read(first),
                                      boost::asio::bind_cancellation_slot(
                                          slot, [h = std::move(handler)](std::exception_ptr, Result r) mutable {
                                              std::move(h)(r.ec, r.n);
                                          }));
            },
            token, buffers);
    }

    template <class ConstBufferSequence, class WriteToken>
    auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
        return boost::asio::async_initiate<WriteToken, void(boost::system::error_code, std::size_t)>(
            [this](auto handler, const ConstBufferSequence& buffers) {
                std::vector<boost::asio::const_buffer> list(boost::asio::buffer_sequence_begin(buffers),
                                                            boost::asio::buffer_sequence_end(buffers));
                if (sink_) {
                    std::string bytes(boost::asio::buffer_size(list), '\0');
                    boost::asio::buffer_copy(boost::asio::buffer(bytes), list);
                    const std::size_t n = bytes.size();
                    const bool ok = sink_->send_raw(std::move(bytes));
                    boost::asio::post(c_.executor(), [h = std::move(handler), ok, n]() mutable {
                        std::move(h)(ok ? boost::system::error_code() : boost::asio::error::broken_pipe, ok ? n : 0);
                    });
                    return;
                }
                auto slot = boost::asio::get_associated_cancellation_slot(handler);
                boost::asio::co_spawn(c_.executor(), write(std::move(list)),
                                      boost::asio::bind_cancellation_slot(
                                          slot, [h = std::move(handler)](std::exception_ptr, Result r) mutable {
                                              std::move(h)(r.ec, r.n);
                                          }));
            },
            token, buffers);
    }

private:
    struct Result {
        boost::system::error_code ec;
        std::size_t n = 0;
    };
    boost::asio::awaitable<Result> read(boost::asio::mutable_buffer b);
    boost::asio::awaitable<Result> write(std::vector<boost::asio::const_buffer> list);

    Connection& c_;
    std::optional<clock::time_point> deadline_;
    std::string ahead_;
    RawSink* sink_ = nullptr;
};

// Beast's teardown after a close handshake: nothing to do here; the framework
// closes the connection when the session returns.
inline void teardown(boost::beast::role_type, ConnectionStream&, boost::system::error_code& ec) { ec = {}; }
template <class TeardownHandler>
void async_teardown(boost::beast::role_type, ConnectionStream& s, TeardownHandler&& handler) {
    boost::asio::post(s.get_executor(), [h = std::forward<TeardownHandler>(handler)]() mutable {
        std::move(h)(boost::system::error_code());
    });
}
// Beast's timeouts are off (the framework's apply); this is never called then.
inline void beast_close_socket(ConnectionStream& s) { s.connection().cancel(); }

}  // namespace coserve::services::chat
