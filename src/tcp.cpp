// TCP: the accept loop, the per-connection coroutine, and the idle sweep.
#include "listeners.hpp"
#include "proxy_header.hpp"
#include "session.hpp"

#include <coserve/connection.hpp>
#include <coserve/log.hpp>

#include <boost/asio/deferred.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>

#include <algorithm>

#include <unistd.h>

namespace coserve::detail {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using clock = std::chrono::steady_clock;

constexpr const char* idle_reason = "idle timeout";

// A connection slot, held for the life of a session: one of the instance's
// max_connections and one of the process's, and the source's place in its
// per-source limits once the source is known. Released on destruction.
class Permit {
public:
    // Admits a connection from `source`: access control and per-source limits
    // first, then one of the instance's and one of the process's connections.
    // Without a source (behind a PROXY header, not read yet) only the latter;
    // admit() takes the rest once the header names the client.
    static std::optional<Permit> acquire(Instance& inst, const asio::ip::address* source, Refusal& why) {
        if (source) {
            why = inst.limits.admit_connection(*source);
            if (why != Refusal::none) return std::nullopt;
        }
        Permit permit(inst, source);  // from here on, the destructor gives back what was taken
        why = Refusal::limit;
        if (inst.server.connections.fetch_add(1) >= inst.server.max_connections.load(std::memory_order_relaxed)) {
            --inst.server.connections;
            permit.inst_ = nullptr;
            if (source) inst.limits.release(*source);
            return std::nullopt;
        }
        if (inst.counters.active.fetch_add(1) >= inst.config.options.max_connections) {
            --inst.counters.active;
            --inst.server.connections;
            permit.inst_ = nullptr;
            if (source) inst.limits.release(*source);
            return std::nullopt;
        }
        why = Refusal::none;
        return permit;
    }
    Refusal admit(const asio::ip::address& source) {
        const Refusal why = inst_->limits.admit_connection(source);
        if (why == Refusal::none) source_ = source;
        return why;
    }
    Permit(Permit&& o) noexcept : inst_(std::exchange(o.inst_, nullptr)), source_(o.source_) {}
    Permit& operator=(Permit&&) = delete;
    ~Permit() {
        if (!inst_) return;
        --inst_->counters.active;
        if (source_) inst_->limits.release(*source_);
        inst_->server.connection_ended();
    }

private:
    Permit(Instance& inst, const asio::ip::address* source) : inst_(&inst) {
        if (source) source_ = *source;
    }
    Instance* inst_;
    std::optional<asio::ip::address> source_;
};

// The refusal of a connection at accept (or after its PROXY header): counted,
// and logged at most once a minute per source.
void log_refusal(Instance& inst, Refusal why, const tcp::endpoint& peer, std::string_view detail = {}) {
    ++inst.counters.refused[static_cast<std::size_t>(why)];
    if (inst.limits.should_log(peer.address()))
        COSERVE_LOG(Severity::info, inst.config.name, log::format_endpoint(peer))
            << "refused (" << refusal_name(why) << (detail.empty() ? "" : ": ") << detail
            << "); logged once a minute per source";
}

bool proxied(const Instance& inst) noexcept {
    return inst.config.options.proxy_protocol != ProxyProtocol::off;
}

bool from_proxy(const Instance& inst, const asio::ip::address& a) noexcept {
    const auto& from = inst.config.options.proxy_from;
    return std::any_of(from.begin(), from.end(), [&](const Cidr& c) { return c.contains(a); });
}

// proxy_protocol: the header, then the per-source limits for the client it
// names (or, for LOCAL, the proxy). False when the connection is refused.
asio::awaitable<bool> take_proxy_header(Session& session, Instance& inst, Permit& permit) {
    boost::system::error_code ec;
    const auto proxy = session.socket.remote_endpoint(ec);
    if (ec) co_return false;
    std::optional<tcp::endpoint> client;
    try {
        client = co_await session.read_proxy_header();
    } catch (const proxy::Error& e) {
        log_refusal(inst, Refusal::proxy_header, proxy, e.what());
        co_return false;
    }
    const tcp::endpoint source = client ? *client : proxy;
    if (const Refusal why = permit.admit(source.address()); why != Refusal::none) {
        log_refusal(inst, why, source);
        co_return false;
    }
    if (client) session.set_peer(*client);
    ++inst.counters.accepted;
    session.connection().log(Severity::debug) << "via proxy " << log::format_endpoint(proxy)
                                              << (client ? "" : " (LOCAL: the proxy itself)");
    co_return true;
}

std::string seconds_text(clock::duration d) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%lld.%03llds", static_cast<long long>(ms / 1000), static_cast<long long>(ms % 1000));
    return buf;
}

// A connection accepted on one event loop for another (thread_model =
// per-thread): its bare descriptor, which the session's own loop registers,
// so that a socket's reactor state is only ever touched by its loop's thread.
class Incoming {
public:
    explicit Incoming(tcp::socket socket) : socket_(std::move(socket)) {}
    // `protocol`: the listener's (no getsockname per connection).
    Incoming(tcp::socket& accepted, const asio::any_io_executor& ex, tcp protocol)
        : socket_(ex), fd_(accepted.release()), protocol_(protocol) {}
    Incoming(Incoming&& o) noexcept
        : socket_(std::move(o.socket_)), fd_(std::exchange(o.fd_, -1)), protocol_(o.protocol_) {}
    Incoming& operator=(Incoming&& o) noexcept {
        if (this == &o) return *this;
        if (fd_ >= 0) ::close(fd_);
        socket_ = std::move(o.socket_);
        fd_ = std::exchange(o.fd_, -1);
        protocol_ = o.protocol_;
        return *this;
    }
    ~Incoming() {
        if (fd_ >= 0) ::close(fd_);
    }
    // The socket, once it is registered (by take(), then given back).
    tcp::socket& socket() noexcept { return socket_; }
    // On the session's executor.
    tcp::socket take() {
        if (fd_ < 0) return std::move(socket_);
        tcp::socket s(socket_.get_executor());
        s.assign(protocol_, fd_);  // throws (and the destructor closes) when it cannot
        fd_ = -1;
        return s;
    }

private:
    tcp::socket socket_;
    int fd_ = -1;
    tcp protocol_ = tcp::v4();
};

// What a session is between its coroutines: at accept, and while parked
// (ServiceType::idle_restart). `tls`: the context of a TLS listener's
// session (null: plaintext); `front_end`: the listener's
// (Connection::front_end(); static, like Instance::kinds).
struct Start {
    Incoming incoming;
    Permit permit;
    std::shared_ptr<const TlsContext> tls;
    std::string_view front_end;
    clock::time_point started = clock::now();
    // Set once the session has run and parked: the figures it carries on.
    bool resumed = false;
    std::string peer;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
};

// The session's end, counted and logged (the debug line with its figures).
void count_close(Instance& inst, SessionSlot& slot, const std::string& peer, std::uint64_t in, std::uint64_t out,
                 clock::time_point started) {
    inst.counters.bytes_in += in;
    inst.counters.bytes_out += out;
    ++inst.counters.closed;
    const char* why = slot.cancel_reason ? slot.cancel_reason : "closed";
    if (slot.cancel_reason == idle_reason) ++inst.counters.idle_closed;
    COSERVE_LOG(Severity::debug, inst.config.name, peer)
            << why << ": bytes in " << in << ", out " << out << ", duration " << seconds_text(clock::now() - started);
}

void spawn_session(Start start, Instance& inst, SessionSlot& slot);

// A parked session waits for input without a coroutine: its socket, its
// permit and its figures (Start) in the wait's handler. Input starts a new
// coroutine; a cancellation (idle timeout, shutdown: Instance::
// cancel_sessions cancels the socket) ends it here. On the session's executor.
void end_parked(std::unique_ptr<Start> start, Instance& inst, SessionSlot& slot) {
    slot.finished = true;
    count_close(inst, slot, start->peer, start->bytes_in, start->bytes_out, start->started);
    start.reset();  // the socket closes, the permit goes
    inst.remove_session(slot);
}

void park(std::unique_ptr<Start> start, Instance& inst, SessionSlot& slot) {
    if (slot.cancel_reason) {  // cancelled between its coroutine's end and now
        end_parked(std::move(start), inst, slot);
        return;
    }
    tcp::socket& socket = start->incoming.socket();
    slot.parked_socket = &socket;
    slot.parked = true;
    ++inst.counters.parked;
    socket.async_wait(tcp::socket::wait_read, [start = std::move(start), &inst, &slot](boost::system::error_code ec) mutable {
        --inst.counters.parked;
        slot.parked_socket = nullptr;
        slot.parked = false;
        if (!ec && !slot.cancel_reason)
            spawn_session(std::move(*start), inst, slot);
        else
            end_parked(std::move(start), inst, slot);
    });
}

// The life of a connection, or of one of its runs between parkings: the
// PROXY header and the TLS handshake at first, then the service. Returns
// what is needed to go on when the session parks (null when it ended).
asio::awaitable<std::unique_ptr<Start>> run_session(Start start, Instance& inst, SessionSlot& slot) {
    std::optional<tcp::socket> socket;
    try {
        socket.emplace(start.incoming.take());  // a handed-over descriptor registered by this loop
    } catch (const boost::system::system_error& e) {
        COSERVE_LOG(Severity::debug, inst.config.name, start.peer) << "accept: " << e.what();
        slot.finished = true;
        if (start.resumed || !proxied(inst)) count_close(inst, slot, start.peer, 0, 0, start.started);
        co_return nullptr;
    }
    Session session(std::move(*socket), inst, slot, std::move(start.peer));
    session.front_end = start.front_end;
    Connection& conn = session.connection();
    if (start.resumed) {
        session.bytes_in = start.bytes_in;
        session.bytes_out = start.bytes_out;
    } else {
        conn.log(Severity::debug) << (start.tls ? "accepted (tls)" : "accepted");
    }
    // Behind a proxy: admitted once its header is read and the client admitted.
    bool admitted = start.resumed || !proxied(inst);
    bool park_now = false;
    try {
        if (!admitted) admitted = co_await take_proxy_header(session, inst, start.permit);
        if (admitted && (start.resumed || !start.tls || co_await session.handshake(std::move(start.tls)))) {
            co_await inst.config.service->serve(conn);
            co_await session.linger();
        }
    } catch (const boost::system::system_error& e) {
        // The sweep's request to park ends the wait for input (idle_sweep).
        park_now = session.park_asked && !slot.cancel_reason && e.code() == asio::error::operation_aborted;
        if (!park_now && !is_normal_close(e.code())) {
            ++inst.counters.errors;
            conn.log(Severity::error) << "session failed: " << e.what();
        }
    } catch (const std::exception& e) {
        ++inst.counters.errors;
        conn.log(Severity::error) << "session failed: " << e.what();
    }
    // Cancellation (idle timeout, shutdown) must not stop the clean-up below.
    co_await asio::this_coro::throw_if_cancelled(false);
    co_await session.quiesce();
    if (park_now) {
        start.resumed = true;
        start.peer = std::move(session.peer);
        start.bytes_in = conn.bytes_in();
        start.bytes_out = conn.bytes_out();
        start.incoming = Incoming(std::move(session.socket));
        co_return std::make_unique<Start>(std::move(start));
    }
    slot.parked = false;
    slot.finished = true;
    if (!admitted) co_return nullptr;  // counted as refused (or gone before its header ended)
    count_close(inst, slot, session.log_peer, conn.bytes_in(), conn.bytes_out(), start.started);
    co_return nullptr;
}

void spawn_session(Start start, Instance& inst, SessionSlot& slot) {
    auto executor = slot.executor;
    asio::co_spawn(executor, run_session(std::move(start), inst, slot),
                   asio::bind_cancellation_slot(slot.signal.slot(), [&inst, &slot](std::exception_ptr e, std::unique_ptr<Start> parked) {
                       log_failure(inst.config.name, "session", e);
                       if (parked)
                           park(std::move(parked), inst, slot);
                       else
                           inst.remove_session(slot);
                   }));
}

bool out_of_resources(const boost::system::error_code& ec) {
    namespace e = asio::error;
    return ec == e::no_descriptors || ec == e::no_buffer_space || ec == e::no_memory ||
           ec == boost::system::error_code(ENFILE, boost::system::system_category());
}

// `kind`: whether the listener speaks TLS, and for which front-end (Instance::kinds).
asio::awaitable<void> accept_loop(Instance& inst, tcp::acceptor& acceptor, std::string_view kind) {
    const bool tls = tls_kind(kind);
    const std::string_view front_end = front_end_of(kind);
    const std::string where = log::format_endpoint(acceptor.local_endpoint());
    bool resource_warned = false;
    bool limit_warned = false;
    const bool hand_off = inst.server.several_loops();  // accepted here, registered by its own loop
    const tcp protocol = acceptor.local_endpoint().protocol();
    for (;;) {
        // (Not `c ? co_await a : co_await b`: GCC 12 destroys its result twice.)
        std::tuple<boost::system::error_code, tcp::socket> accepted{boost::system::error_code(),
                                                                    tcp::socket(acceptor.get_executor())};
        if (hand_off)
            accepted = co_await acceptor.async_accept(asio::as_tuple(asio::deferred));
        else
            accepted = co_await acceptor.async_accept(inst.server.connection_executor(), asio::as_tuple(asio::deferred));
        auto& [ec, socket] = accepted;
        if (!acceptor.is_open() || inst.server.stopping) co_return;
        if (ec) {
            if (ec == asio::error::operation_aborted) co_return;
            if (out_of_resources(ec)) {
                // EMFILE/ENFILE: the pending connection stays in the backlog; pause instead of spinning.
                if (!resource_warned)
                    COSERVE_LOG(Severity::warning, inst.config.name, where)
                        << "accept: " << ec.message() << "; pausing 100ms between retries";
                resource_warned = true;
                asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
                co_await pause.async_wait(asio::as_tuple(asio::deferred));
            } else {
                COSERVE_LOG(Severity::debug, inst.config.name, where) << "accept: " << ec.message();
            }
            continue;
        }
        if (resource_warned) {
            COSERVE_LOG(Severity::info, inst.config.name, where) << "accepting again";
            resource_warned = false;
        }
        boost::system::error_code peer_ec;
        const auto peer = socket.remote_endpoint(peer_ec);
        if (peer_ec) continue;  // already gone
        Refusal why = Refusal::none;
        const auto source = peer.address();
        auto permit = [&]() -> std::optional<Permit> {
            if (!proxied(inst)) return Permit::acquire(inst, &source, why);
            if (!from_proxy(inst, peer.address())) {
                why = Refusal::proxy_from;  // a header from elsewhere changes nothing: not even read
                return std::nullopt;
            }
            return Permit::acquire(inst, nullptr, why);  // per-source limits once the header names the client
        }();
        if (!permit) {
            if (why == Refusal::limit) {
                ++inst.counters.refused[static_cast<std::size_t>(why)];
                if (!limit_warned)
                    COSERVE_LOG(Severity::warning, inst.config.name, log::format_endpoint(peer))
                        << "connection limit reached (instance " << inst.config.options.max_connections << ", process "
                        << inst.server.max_connections.load() << "); closing new connections until one ends";
                limit_warned = true;
            } else {
                log_refusal(inst, why, peer);
            }
            continue;  // the socket closes as it goes out of scope, before any byte is read
        }
        limit_warned = false;
        if (!proxied(inst)) ++inst.counters.accepted;
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto executor = hand_off ? inst.server.connection_executor() : socket.get_executor();
        std::optional<Incoming> incoming;
        try {
            incoming.emplace(hand_off ? Incoming(socket, executor, protocol) : Incoming(std::move(socket)));
        } catch (const boost::system::system_error& e) {
            COSERVE_LOG(Severity::debug, inst.config.name, log::format_endpoint(peer)) << "accept: " << e.what();
            continue;  // gone meanwhile; the permit gives back what it took
        }
        SessionSlot& slot = inst.add_session(executor);
        Start start{.incoming = std::move(*incoming), .permit = std::move(*permit), .tls = tls ? inst.tls() : nullptr,
                    .front_end = front_end, .started = clock::now(), .resumed = false, .peer = {}, .bytes_in = 0, .bytes_out = 0};
        if (!inst.idle_restart || tls || proxied(inst)) {
            spawn_session(std::move(start), inst, slot);
            continue;
        }
        // A service that waits for the client's first bytes: none of its
        // coroutine until they come (ServiceType::idle_restart).
        start.resumed = true;
        start.peer = log::format_endpoint(peer);
        COSERVE_LOG(Severity::debug, inst.config.name, start.peer) << "accepted";
        asio::post(executor, [start = std::make_unique<Start>(std::move(start)), &inst, &slot]() mutable {
            try {
                start->incoming = Incoming(start->incoming.take());  // registered by its own loop
            } catch (const boost::system::system_error& e) {
                COSERVE_LOG(Severity::debug, inst.config.name, start->peer) << "accept: " << e.what();
                end_parked(std::move(start), inst, slot);
                return;
            }
            park(std::move(start), inst, slot);
        });
    }
}

asio::awaitable<void> idle_sweep(Instance& inst, Duration idle) {
    // Sessions mark their reads and writes (Session::touch, a flag); this
    // coarse sweep turns the marks into times and closes the silent, so no
    // timer is re-armed and no clock is read per read. A session is closed
    // after idle_timeout of silence, never sooner, and at most two periods
    // later (one for a client that never sent anything: add_session stamps
    // the accept). For a service with idle_restart (idle_timeout may be 0
    // then: no closing) a session silent for a whole period, waiting for
    // input, is asked to park.
    const auto period = idle > Duration::zero()
                            ? std::clamp<Duration>(idle / 4, std::chrono::milliseconds(10), std::chrono::seconds(1))
                            : Duration(std::chrono::seconds(1));
    for (;;) {
        inst.sweep_timer->expires_after(period);
        auto [ec] = co_await inst.sweep_timer->async_wait(asio::as_tuple(asio::deferred));
        if (ec || inst.server.stopping) co_return;
        if (inst.retired && inst.session_count() == 0) co_return;  // replaced by a reload, and drained
        // The clock is read per session, under the registry's lock, after the
        // mark is taken back: activity after that read is seen next time,
        // never stamped with an earlier time (which could close it early).
        // idle_timeout 0 closes nothing; the marks are still stamped for parking.
        std::size_t silent = 0;
        inst.cancel_sessions(
            [&](SessionSlot& s) {
                const bool active = s.active.exchange(false, std::memory_order_relaxed);
                const auto now = clock::now();
                if (active) s.last_seen = now.time_since_epoch().count();
                if (!active && !s.parked.load(std::memory_order_relaxed)) ++silent;
                return idle > Duration::zero() && s.last_seen < (now - idle).time_since_epoch().count();
            },
            idle_reason);
        if (inst.idle_restart && silent > 0)
            inst.visit_sessions(
                [&](SessionSlot& s) {
                    return !s.cancel_reason && !s.parked.load(std::memory_order_relaxed) &&
                           s.last_seen < (clock::now() - period).time_since_epoch().count();
                },
                [](SessionSlot& s, const char*) {
                    // Only a session waiting for input, with nothing of a message read yet.
                    if (!s.session || !s.session->waiting_input || s.session->park_asked) return;
                    s.session->park_asked = true;
                    s.parked = true;
                    boost::system::error_code ignored;
                    s.session->socket.cancel(ignored);
                },
                nullptr);
    }
}

}  // namespace

void log_failure(const std::string& instance, std::string_view what, std::exception_ptr e) {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        COSERVE_LOG(Severity::error, instance, "") << what << " coroutine failed: " << x.what();
    } catch (...) {
        COSERVE_LOG(Severity::error, instance, "") << what << " coroutine failed with a non-standard exception";
    }
}

void start_tcp(Instance& inst) {
    for (std::size_t i = 0; i < inst.acceptors.size(); ++i)
        asio::co_spawn(inst.acceptors[i].get_executor(), accept_loop(inst, inst.acceptors[i], inst.kinds[i]),
                       [&inst](std::exception_ptr e) { log_failure(inst.config.name, "accept", e); });
    const auto idle = inst.config.options.idle_timeout;
    if (!inst.acceptors.empty() && (idle > Duration::zero() || inst.idle_restart)) {
        inst.sweep_timer = std::make_unique<asio::steady_timer>(inst.server.control);
        asio::co_spawn(inst.server.control, idle_sweep(inst, idle),
                       [&inst](std::exception_ptr e) { log_failure(inst.config.name, "idle sweep", e); });
    }
}

}  // namespace coserve::detail
