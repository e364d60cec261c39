// Test support: an in-process server on OS-chosen loopback ports, and small
// blocking clients on raw POSIX sockets whose every wait has a timeout, so a
// broken server fails a test instead of hanging it.
#pragma once

#include <coserve/config.hpp>
#include <coserve/server.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <vector>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace testing {

using namespace std::chrono_literals;

// Runs a Server built from INI text on its own thread; stops and joins on destruction.
class RunningServer {
public:
    explicit RunningServer(std::string_view ini);
    ~RunningServer();

    coserve::Server& server() { return *server_; }
    boost::asio::ip::tcp::endpoint tcp(std::string_view instance, std::size_t index = 0) const;
    boost::asio::ip::udp::endpoint udp(std::string_view instance, std::size_t index = 0) const;
    // Begins graceful shutdown and waits (up to `limit`) for run() to return; true if it did.
    bool stop_and_wait(std::chrono::milliseconds limit = 10s);

private:
    std::unique_ptr<coserve::Server> server_;
    std::thread thread_;
    std::atomic<bool> done_{false};
};

class TcpClient {
public:
    explicit TcpClient(const boost::asio::ip::tcp::endpoint& to);
    // Connects from a given local address (e.g. 127.0.0.2, another loopback source).
    TcpClient(const boost::asio::ip::tcp::endpoint& to, const boost::asio::ip::address& from);
    ~TcpClient();
    TcpClient(TcpClient&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    TcpClient(const TcpClient&) = delete;

    void send(std::string_view data);
    void shutdown_write();
    // Some bytes, or "" at EOF; throws on timeout or error.
    std::string recv_some(std::chrono::milliseconds timeout = 5s, std::size_t max = 65536);
    // Exactly n bytes (never more); throws on EOF or timeout first.
    std::string recv_exact(std::size_t n, std::chrono::milliseconds timeout = 10s);
    // Everything until the server closes.
    std::string recv_all(std::chrono::milliseconds timeout = 10s);
    // True if the server closed (EOF or reset) within `timeout`, with no data first.
    bool closed_within(std::chrono::milliseconds timeout);
    int fd() const { return fd_; }

private:
    int fd_ = -1;
};

// Consumes `n` more bytes of `buffer`, whose untaken part starts at `head`. The
// taken prefix is dropped only once it is half the buffer, so taking many
// lines or frames out of one big read is linear (an erase per piece made the
// 1000-member tests quadratic: seconds of memmove, minutes under TSan).
inline void consume(std::string& buffer, std::size_t& head, std::size_t n) {
    head += n;
    if (head * 2 >= buffer.size()) {
        buffer.erase(0, head);
        head = 0;
    }
}

// A TcpClient that reads CRLF- or LF-terminated lines.
class LineClient {
public:
    explicit LineClient(const boost::asio::ip::tcp::endpoint& to) : tcp_(to) {}
    void send(std::string_view data) { tcp_.send(data); }
    void send_line(std::string_view line) { tcp_.send(std::string(line) + "\r\n"); }
    // The next line without its ending; throws on timeout or EOF.
    std::string line(std::chrono::milliseconds timeout = 5s);
    // Exactly n raw bytes (after the lines read so far).
    std::string bytes(std::size_t n, std::chrono::milliseconds timeout = 30s);
    // Whatever was read past the last line, taken out of the buffer.
    std::string take_buffered() {
        compact();
        return std::exchange(buffer_, {});
    }
    // True if no line arrives within `wait` and the connection stays open
    // (a close is not quiet: it fails a "nothing arrived" check).
    bool quiet_for(std::chrono::milliseconds wait);
    // True if the server closes within `timeout` (lines before that are skipped).
    bool closed_within(std::chrono::milliseconds timeout);
    TcpClient& tcp() { return tcp_; }

private:
    // Lines are taken from buffer_ at head_ (consume()); compact() drops the
    // taken part before buffer_ is used from its start.
    void compact() {
        buffer_.erase(0, head_);
        head_ = 0;
    }
    TcpClient tcp_;
    std::string buffer_;
    std::size_t head_ = 0;
    bool eof_ = false;
};

class UdpClient {
public:
    explicit UdpClient(const boost::asio::ip::udp::endpoint& to);
    UdpClient(const UdpClient&) = delete;
    // Sends from a given local address and port (port 0: any).
    UdpClient(const boost::asio::ip::udp::endpoint& to, const boost::asio::ip::udp::endpoint& from);
    ~UdpClient();
    void send(std::string_view data);
    // One datagram, or nullopt after `timeout`.
    std::optional<std::string> recv(std::chrono::milliseconds timeout = 2s);

private:
    int fd_ = -1;
};

// The built coserved (COSERVED_PATH) run as a child process with a temporary
// config. Its end is judged: stop() (or the destructor, for a test that did
// not call it) sends SIGTERM and requires exit status 0 within 10 s (SIGKILL
// after that) and no sanitizer report or "runtime error" in its whole log.
class ServerProcess {
public:
    // `env` lines ("NAME=value") are added to the child's environment.
    explicit ServerProcess(std::string_view ini, std::vector<std::string> env = {});
    ~ServerProcess();
    ServerProcess(const ServerProcess&) = delete;

    // The first TCP or UDP endpoint of `instance`, from the start-up log line.
    boost::asio::ip::tcp::endpoint tcp(std::string_view instance) const;
    boost::asio::ip::udp::endpoint udp(std::string_view instance) const;
    // The config file it runs with (rewrite it, then SIGHUP, to reload).
    std::string config_path() const { return dir_ + "/test.ini"; }
    long peak_rss_kib() const;  // VmHWM
    long rss_kib() const;       // VmRSS
    std::string log() const;
    int pid() const { return pid_; }
    // SIGTERM, wait, and judge the end as above (Catch2 checks); the exit
    // status as waitpid gives it. Idempotent.
    int stop();
    // SIGKILL, for a test about a daemon that dies without a goodbye: reaped,
    // and not judged.
    void kill_hard();

private:
    std::string dir_;
    int pid_ = -1;
    int status_ = -1;
};

// SIGTERM to a child, SIGKILL if it has not ended after `grace`: its wait
// status, and whether SIGTERM was enough.
std::pair<int, bool> terminate(int pid, std::chrono::milliseconds grace);

// Lines of a log that a sanitizer or UBSan wrote (empty: none).
std::string sanitizer_reports(const std::string& log);

// A real program (redis-server, haproxy) as a child process: started with
// argv, stopped by its PID with SIGTERM (SIGKILL after 5 s) by stop() or on
// destruction. Its output goes to a file (output()).
class ChildProcess {
public:
    explicit ChildProcess(std::vector<std::string> argv);
    ~ChildProcess();
    ChildProcess(const ChildProcess&) = delete;
    void stop();
    int pid() const { return pid_; }
    std::string output() const;

private:
    std::string log_;
    int pid_ = -1;
};

// A port on 127.0.0.1 that was free a moment ago (for programs that cannot
// report the port the OS chose, such as redis-server and haproxy).
unsigned short free_port();
// True once 127.0.0.1:port accepts connections (false after `timeout`).
bool wait_for_port(unsigned short port, std::chrono::milliseconds timeout = 10s);

// redis-server on 127.0.0.1 and a free port, no persistence; restart() brings
// it back on the same port.
class RedisServer {
public:
    explicit RedisServer(std::vector<std::string> extra_args = {});
    void stop() { process_.reset(); }
    void restart();
    unsigned short port() const { return port_; }
    std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

private:
    unsigned short port_;
    std::vector<std::string> extra_;
    std::unique_ptr<ChildProcess> process_;
};

std::string random_bytes(std::size_t n, unsigned seed);

// Runs a shell command (real clients: curl, rdate, jq, promtool, tmux) and
// returns what it printed; its exit status goes to *status when given.
std::string run(const std::string& command, int* status = nullptr);

// GET /metrics of a server with `[metrics] http`, through the real curl.
std::string scrape_metrics(RunningServer& rs);
// One sample's value in a Prometheus exposition, e.g.
// metric_value(text, "coserve_connections_total{instance=\"echo\",service=\"echo\"}"); -1 if absent.
double metric_value(const std::string& text, const std::string& sample);
// Scrapes every 50 ms until `sample` has the value `want`, for at most
// `within`: the exposition in which it had, or the last one scraped.
std::string scrape_until(RunningServer& rs, const std::string& sample, double want,
                         std::chrono::milliseconds within = 5s);

// The bulk chat tests: each of `n` members said `lines` numbered lines
// (0, 1, ...). For each member i, `heard(i)` gives the next message it
// received as (sender, number), or nullopt for anything else (a join);
// counted: lines out of order, missing or twice (`wrong`), and a member's
// own lines heard back (`own`). Both must be 0.
struct BulkCount {
    std::size_t wrong = 0, own = 0;
};
BulkCount count_bulk(int n, int lines, const std::function<std::optional<std::pair<int, int>>(int)>& heard);

// After a bulk test: how many of `clients` still get something after a
// pause of 500 ms (0: nothing more came, nothing twice).
template <class Client>
std::size_t still_talking(std::vector<std::unique_ptr<Client>>& clients) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::size_t extra = 0;
    for (auto& c : clients)
        if (!c->quiet_for(std::chrono::milliseconds(1))) ++extra;
    return extra;
}

// Server options for in-process servers: no signal handlers.
inline coserve::ServerHooks no_signals() {
    coserve::ServerHooks o;
    o.handle_signals = false;
    return o;
}

}  // namespace testing
