// The server: one io_context (run by `threads` threads), the configured
// instances with their TCP listeners and UDP endpoints, and shutdown.
//
// Life: construct from a validated Config; start() binds every endpoint (all
// or nothing: on failure nothing stays bound and it throws BindError); run()
// serves until stop() or SIGINT/SIGTERM, then stops the listeners at once,
// lets open connections finish for up to shutdown_grace, cancels the rest,
// and returns.
//
// Threading: start() and run() are called from one thread; stop() and the
// accessors are safe from any thread.
#pragma once

#include <coserve/config.hpp>

#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace coserve {

// A runtime failure to bind or listen (port in use, permission). Exit status 1.
struct BindError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A listening socket passed in by a service manager (systemd socket
// activation): the descriptor and its FileDescriptorName, which must be
// "INSTANCE-tcp" or "INSTANCE-udp".
struct InheritedSocket {
    int fd;
    std::string name;
};

// What the program that runs a Server hands it: callbacks (logs, reload,
// service-manager notifications), inherited sockets, and which of the
// daemon's jobs it does itself. (ServerConfig is the [server] section of
// the file; these are the program's.)
struct ServerHooks {
    // SIGINT/SIGTERM stop, SIGHUP reopens the log, SIGUSR1 logs a status
    // summary. Off for in-process tests.
    bool handle_signals = true;
    std::function<void()> reopen_logs;  // called on SIGHUP
    // Called on SIGHUP after reopen_logs: the new configuration to apply, or
    // nullopt to keep the running one (the callee logs why).
    std::function<std::optional<Config>()> reload;
    // Service-manager notifications ("STOPPING=1", "WATCHDOG=1", "STATUS=...");
    // coserved passes libsystemd's sd_notify. Called on the loop.
    std::function<void(const std::string&)> notify;
    Duration watchdog_interval{0};  // send "WATCHDOG=1" this often (0: never)
    // Used instead of binding the endpoints they are bound to. Never closed,
    // also not when a reload no longer needs them (the manager owns them).
    std::vector<InheritedSocket> inherited;
    // [server] pid_file, user and group are a daemon's to act on (coserved
    // does, in its main). A program that acts on them itself sets this; for
    // any other, a configuration that sets them is refused by the Server's
    // constructor (ConfigError, one line naming the key), never ignored.
    bool daemon_keys = false;
};
// The name before 2.0.
using ServerOptions [[deprecated("renamed ServerHooks")]] = ServerHooks;

class Server {
public:
    // Throws ConfigError for the daemon's keys unless hooks.daemon_keys.
    explicit Server(Config config, ServerHooks hooks = {});
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds every endpoint (all or nothing; throws on failure) and starts
    // accepting. Also sets SIGPIPE to ignored for the whole process: a write
    // to a peer that reset must fail with EPIPE, not kill the process, and
    // sendfile(2) has no MSG_NOSIGNAL.
    void start();
    void run();
    void stop();  // begin graceful shutdown; thread-safe, idempotent
    // Applies a new configuration as SIGHUP does (asynchronously; thread-safe).
    void reload(Config next);

    // The bound addresses of an instance (useful with port 0).
    std::vector<boost::asio::ip::tcp::endpoint> tcp_endpoints(std::string_view instance) const;
    // Where an instance's `tls =` listeners are bound (after start()).
    std::vector<boost::asio::ip::tcp::endpoint> tls_endpoints(std::string_view instance) const;
    // The listeners of one kind: tcp, tls, or a front-end's (`irc`, `irc_tls`).
    std::vector<boost::asio::ip::tcp::endpoint> endpoints(std::string_view instance, std::string_view kind) const;
    std::vector<boost::asio::ip::udp::endpoint> udp_endpoints(std::string_view instance) const;

    // Where the metrics endpoint listens ([metrics] http).
    std::vector<boost::asio::ip::tcp::endpoint> metrics_endpoints() const;

    // Open TCP connections, process-wide.
    long long connections() const noexcept;

    // One line per instance: service, endpoints, open and total connections.
    std::string status() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the resulting soft limit.
long long raise_file_limit() noexcept;

}  // namespace coserve
