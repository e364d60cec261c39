// Internal: the running state of one configured instance and the registry of
// its live TCP sessions (for the idle sweep and for shutdown).
#pragma once

#include <coserve/config.hpp>
#include <coserve/service.hpp>

#include "limits.hpp"
#include "tls_failure.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <set>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace coserve::detail {

struct Counters {
    std::atomic<std::uint64_t> accepted{0};
    std::array<std::atomic<std::uint64_t>, refusal_count> refused{};  // TCP connections closed at accept, by reason
    std::array<std::atomic<std::uint64_t>, refusal_count> dropped{};  // UDP datagrams dropped unanswered, by reason
    std::atomic<std::uint64_t> closed{0};
    std::atomic<std::uint64_t> idle_closed{0};
    std::atomic<std::uint64_t> errors{0};
    std::atomic<std::uint64_t> bytes_in{0};
    std::atomic<std::uint64_t> bytes_out{0};
    std::atomic<std::uint64_t> datagrams_in{0};
    std::atomic<std::uint64_t> datagrams_out{0};
    std::atomic<long long> active{0};
    std::atomic<long long> parked{0};  // of the active: waiting for input without a coroutine (idle_restart)
    std::array<std::atomic<std::uint64_t>, 2> tls_handshakes{};  // completed: TLS 1.2, TLS 1.3
    std::array<std::atomic<std::uint64_t>, tls_failure_count> tls_failed{};  // by TlsFailure
};

class Session;

// Registry entry of one TCP session. Created before the session coroutine is
// spawned and erased by its completion handler, so the cancellation signal
// bound to the coroutine outlives it. Touched only on the session's executor,
// except `active` (atomic), which the session sets and the idle sweep clears,
// and `last_seen`, which only the sweep uses (under the registry's lock).
struct SessionSlot {
    std::uint64_t id = 0;  // unique in the instance (0: the slot is free)
    std::uint32_t index = 0;  // its place in the registry
    boost::asio::any_io_executor executor;
    boost::asio::cancellation_signal signal;
    // Activity without a clock read per read or write: the session sets
    // `active` (Session::touch); the sweep, every period, takes it back and
    // stamps `last_seen` with its own clock, and closes a session whose
    // last_seen is older than idle_timeout.
    std::atomic<bool> active{false};
    std::chrono::steady_clock::rep last_seen = 0;
    std::atomic<bool> finished{false};    // the coroutine has returned; emit nothing any more
    const char* cancel_reason = nullptr;  // why the framework cancelled it, for the close log line
    // ServiceType::idle_restart: the running session (null between
    // coroutines), and while parked the socket waiting for input; both on
    // the session's executor only. `parked` (parked, or asked to park) tells
    // the sweep not to ask again.
    Session* session = nullptr;
    boost::asio::ip::tcp::socket* parked_socket = nullptr;
    std::atomic<bool> parked{false};  // parked or asked to
};

class ServerState;

// A listener kind: tcp, tls, or a front-end's NAME or NAME_tls.
inline bool tls_kind(std::string_view kind) noexcept { return kind == "tls" || kind.ends_with("_tls"); }
// The front-end a kind belongs to ("" for tcp and tls, the service's own protocol).
inline std::string_view front_end_of(std::string_view kind) noexcept {
    if (kind == "tcp" || kind == "tls") return {};
    return kind.ends_with("_tls") ? kind.substr(0, kind.size() - 4) : kind;
}

struct Instance {
    Instance(InstanceConfig config, ServerState& server);

    InstanceConfig config;
    ServerState& server;
    Counters counters;
    SourceLimits limits;
    std::atomic<bool> retired{false};  // replaced by a reload: no listeners, its sessions finish
    const bool idle_restart;           // its service type's ServiceType::idle_restart

    // acceptors[i] is a listener of kinds[i] (tcp, tls, a front-end's NAME or
    // NAME_tls; the order of detail::listeners()).
    std::vector<boost::asio::ip::tcp::acceptor> acceptors;
    std::vector<std::string> kinds;
    std::vector<boost::asio::ip::udp::socket> udp_sockets;
    std::vector<boost::asio::ip::tcp::endpoint> tcp_bound;  // what start() bound (port 0 resolved)
    std::vector<boost::asio::ip::udp::endpoint> udp_bound;
    std::unique_ptr<boost::asio::steady_timer> sweep_timer;  // on the server's control executor

    // A session's slot: its address is stable until remove_session(), and
    // the place is reused after it.
    SessionSlot& add_session(boost::asio::any_io_executor executor);
    void remove_session(SessionSlot& slot);
    // Terminal cancellation of the sessions for which `pick` is true; the
    // signal is emitted on each session's own executor. A session already
    // cancelled is signalled again only with `again`. Thread-safe.
    void cancel_sessions(const std::function<bool(SessionSlot&)>& pick, const char* reason, bool again = false);
    // Runs `act` on the executor of each session for which `pick` is true
    // (under the registry's lock, for a session still the same and not
    // finished). `pick` runs on the caller's thread, under the lock. Thread-safe.
    void visit_sessions(const std::function<bool(SessionSlot&)>& pick, void (*act)(SessionSlot&, const char*),
                        const char* reason);
    std::size_t session_count();

    // The TLS context new sessions use: the configuration's, or the one a
    // reload loaded from new files (set_tls). Thread-safe.
    std::shared_ptr<const TlsContext> tls() const;
    void set_tls(std::shared_ptr<const TlsContext> context);

private:
    mutable std::mutex tls_mutex_;
    std::shared_ptr<const TlsContext> tls_;
    std::mutex mutex_;
    std::uint64_t next_id_ = 1;
    // The slots side by side (a deque: stable addresses), free ones reused:
    // the idle sweep walks 10,000 of them in well under a millisecond,
    // where a node-based map cost it a cache miss per session (30 ms).
    std::deque<SessionSlot> slots_;
    std::vector<std::uint32_t> free_;
};

// Logs a warning when the instance's TLS certificate has expired or expires within 14 days.
void warn_expiry(const Instance& inst);

// Process-wide state shared by the instances.
class ServerState {
public:
    // `loops`: with thread_model = per-thread, every event loop (ioc first),
    // each run by one thread; empty otherwise. They outlive this state.
    ServerState(boost::asio::io_context& ioc, const ServerConfig& config,
                std::vector<boost::asio::io_context*> loops = {});

    boost::asio::io_context& ioc;
    ServerConfig config;
    // Listeners, sweeps, signals and shutdown run here: ioc's executor, a
    // strand when several threads run ioc (thread_model = shared).
    boost::asio::any_io_executor control;
    std::atomic<long long> connections{0};
    // A session's permit ends: at shutdown, the last one calls
    // on_last_connection (set before the loop runs), which wakes the drain.
    void connection_ended() {
        if (connections.fetch_sub(1) == 1 && stopping && on_last_connection) on_last_connection();
    }
    std::function<void()> on_last_connection;
    std::atomic<long long> max_connections;  // [server] max_connections, changed by reload
    std::set<unsigned short> udp_ports;      // every UDP port served (on the control executor only)
    std::atomic<bool> stopping{false};

    // An executor for a new connection: ioc's; a strand when several threads
    // run it; with a loop per thread, the loops' in turn.
    boost::asio::any_io_executor connection_executor();
    // Several loops: connections are accepted on the first and handed over.
    bool several_loops() const noexcept { return !loops_.empty(); }

private:
    std::vector<boost::asio::io_context*> loops_;
    std::atomic<std::size_t> next_loop_{0};
};

}  // namespace coserve::detail
