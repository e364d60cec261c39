// Internal: the framework's state of one TCP connection, owned by the
// session coroutine (tcp.cpp, run_session) for the life of the session. The
// service sees only its Connection handle.
#pragma once

#include <coserve/connection.hpp>

#include "instance.hpp"

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace coserve::detail {

class Session {
public:
    Session(boost::asio::ip::tcp::socket socket, Instance& instance, SessionSlot& slot);
    Session(const Session&) = delete;

    Connection& connection() noexcept { return connection_; }

    // After serve() returned: sends FIN, then reads and drops what the client
    // still sends until it closes too (at most 1 s and 64 KiB). Closing a
    // socket with unread input would send a reset, which can destroy our
    // last bytes before the client reads them.
    boost::asio::awaitable<void> linger();
    // Waits until no timer handler of ours is still queued, so destroying
    // the session cannot race with one.
    boost::asio::awaitable<void> quiesce();

    void touch() noexcept {
        slot.last_activity.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    }

    boost::asio::ip::tcp::socket socket;
    boost::asio::any_io_executor executor;
    Instance& instance;
    SessionSlot& slot;
    std::string peer;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;                      // on the executor
    std::atomic<std::uint64_t> bytes_out_shared{0};  // by try_send, from any thread
    boost::asio::steady_timer read_timer;
    boost::asio::cancellation_signal read_cancel;  // cancels the read of read_some_for() only
    unsigned timer_handlers = 0;                    // read_timer handlers not yet run
    unsigned read_generation = 0;
    bool timed_out = false;
    bool eof_pending = false;          // read_shared() saw the end after returning data
    std::array<char, 128> small{};     // read_shared()'s own buffer: one message of a chatty protocol

private:
    Connection connection_{*this};
};

}  // namespace coserve::detail
