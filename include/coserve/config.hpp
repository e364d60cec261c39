// Configuration: endpoint and duration syntax, INI sections, and the validated
// server and instance settings, parsed at start-up (and at each reload) on
// one thread; nothing is shared with the event loop until a Server is built
// from a finished Config. Not all plain data: loading builds each instance's
// Service (InstanceConfig::service, shared by the instance's sessions), and a
// section with `plugin = PATH` loads that shared object (dlopen) to do so.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coserve {

class Service;

using Duration = std::chrono::milliseconds;

// A configuration mistake. what() is one line naming the file, section and key.
// coserved exits with status 2 on it.
struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// `host:port`, `[v6addr]:port` or `*:port` (all interfaces, IPv4 and IPv6).
// Port 0 asks the OS for a free port. Hosts are numeric: nothing is resolved.
struct Endpoint {
    boost::asio::ip::address address;  // unspecified when `any`
    std::uint16_t port = 0;
    bool any = false;

    std::string to_string() const;
    bool operator==(const Endpoint&) const = default;
    // True when binding both would collide (same port, same address or a wildcard).
    bool overlaps(const Endpoint& other) const;
};

// An address range: 10.0.0.0/8, 2001:db8::/32, 127.0.0.1 (= /32), ::1 (= /128).
struct Cidr {
    boost::asio::ip::address network;
    unsigned prefix = 0;
    // IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match as IPv4.
    bool contains(const boost::asio::ip::address& a) const noexcept;
    std::string to_string() const;
};

// A rate for a token bucket: `per_second` tokens a second, at most `burst` saved.
struct Rate {
    double per_second = 0;  // 0: no limit
    double burst = 0;
    bool limited() const noexcept { return per_second > 0; }
};

// Parsers for single values; they throw std::invalid_argument with a short reason.
Cidr parse_cidr(std::string_view text);
// "N/s" or "N/m" (N from 1 to 1000000), or "0" for no limit; the burst is N unless given.
Endpoint parse_endpoint(std::string_view text);
std::vector<Endpoint> parse_endpoint_list(std::string_view text);  // comma-separated
Rate parse_rate(std::string_view text);
Duration parse_duration(std::string_view text);  // 250ms, 30s, 5m, 1h; bare 0 allowed
std::string format_duration(Duration d);

// One INI section's keys, consumed by whoever understands them (the framework's
// common keys, then the service's own). Each accessor validates, records the
// effective value for --check-config, and marks the key as known; finish()
// rejects the keys nobody asked for. Errors throw ConfigError naming
// file, section and key.
class Section {
public:
    Section(std::string file, std::string name, std::vector<std::pair<std::string, std::string>> values);

    const std::string& name() const { return name_; }
    const std::string& file() const { return file_; }  // the config file this section came from

    long long integer(std::string_view key, long long def, long long min, long long max);
    Duration duration(std::string_view key, Duration def, Duration min = Duration::zero(),
                      Duration max = std::chrono::hours(24 * 365));
    bool boolean(std::string_view key, bool def);
    std::string string(std::string_view key, std::string_view def);
    // A password: --check-config shows only whether it is set.
    std::string secret(std::string_view key);
    std::string choice(std::string_view key, std::string_view def, std::initializer_list<std::string_view> allowed);
    std::vector<Endpoint> endpoints(std::string_view key);  // absent = empty list
    // CIDR lists ("allow = 10.0.0.0/8, ::1"); absent = empty.
    std::vector<Cidr> cidrs(std::string_view key);
    // A rate ("20/s"); `burst_key` (if not empty) overrides the burst.
    Rate rate(std::string_view key, std::string_view def, std::string_view burst_key = {}, long long burst_def = 0);
    // A byte count: 1048576, 64K, 10M, 1G (powers of 1024).
    std::uint64_t bytes(std::string_view key, std::uint64_t def, std::uint64_t max);
    // A path; a relative one is taken relative to the config file's folder. Empty stays empty.
    std::string path(std::string_view key, std::string_view def);

    // The raw text of a key, or nullopt; marks it known without recording it.
    std::optional<std::string> raw(std::string_view key);

    [[noreturn]] void fail(std::string_view key, std::string_view message) const;
    void finish() const;  // throws on the first key that no accessor asked for

    // key = value pairs, in the order asked, with defaults filled in.
    const std::vector<std::pair<std::string, std::string>>& effective() const { return effective_; }

private:
    const std::string* find(std::string_view key);
    std::string text(std::string_view key, std::string_view def);  // trimmed, optional quotes removed; not recorded
    void record(std::string_view key, std::string value);

    std::string file_;
    std::string name_;
    std::vector<std::pair<std::string, std::string>> values_;
    std::vector<bool> used_;
    std::vector<std::pair<std::string, std::string>> effective_;
};

enum class Severity { trace, debug, info, warning, error, fatal };
Severity parse_severity(std::string_view text);  // throws std::invalid_argument
std::string_view severity_name(Severity s);

// [server]
struct ServerConfig {
    int threads = 1;
    Severity log_level = Severity::info;
    Duration shutdown_grace = std::chrono::seconds(5);
    long long max_connections = 10000;
    std::string log_file;              // empty: stderr
    bool log_json = false;             // log_format = json
    bool syslog = false;
    // thread_model = per-thread: `threads` event loops that share nothing
    // (one io_context each, connections dealt to them in turn) instead of
    // one io_context run by all the threads.
    bool loop_per_thread = false;
    std::uint64_t log_rotate_size = 0;
    std::string pid_file;
    std::string user;                  // drop privileges to this user after binding
    std::string group;
};

// The `tls_*` keys of an instance or of [metrics] (docs/config.md, "TLS").
struct TlsSettings {
    std::string cert;                  // tls_cert: PEM, the certificate, then its chain
    std::string key;                   // tls_key: PEM; refused when group or others may read it
    std::string min_version = "1.2";   // tls_min_version: 1.2 or 1.3
    std::string ciphers;               // tls_ciphers (TLS 1.2, OpenSSL syntax); empty: OpenSSL's default
    std::string ciphersuites;          // tls_ciphersuites (TLS 1.3); empty: OpenSSL's default
    std::string client_ca;             // tls_client_ca: PEM, the CAs a client certificate must come from
    enum class ClientAuth { none, optional, require } client_auth = ClientAuth::none;
    Duration handshake_timeout = std::chrono::seconds(10);
};

// The certificate, key and settings of TLS listeners, loaded and checked
// (an OpenSSL context; internal). Immutable once loaded, shared by the
// sessions that use it; a reload loads a new one.
class TlsContext;

// `proxy_protocol`: whether TCP connections open with a PROXY protocol
// header (HAProxy's), and which versions are taken.
enum class ProxyProtocol { off, v1, v2, any };

// The listeners of a front-end a service declares (ServiceType::front_ends;
// chat's `irc`): the same service in another protocol, told apart by
// Connection::front_end(). Keys NAME (plaintext) and NAME_tls (inside TLS,
// with the instance's tls_* keys).
struct FrontEndListeners {
    std::string name;
    std::vector<Endpoint> tcp, tls;
};

// Keys every instance has, whatever its service.
struct InstanceOptions {
    std::vector<Endpoint> tcp;
    std::vector<Endpoint> tls;    // TCP listeners that speak the service inside TLS
    TlsSettings tls_settings;
    std::vector<FrontEndListeners> front_ends;  // in the order of ServiceType::front_ends
    std::vector<Endpoint> udp;
    bool enabled = true;
    long long max_connections = 1000;
    Duration idle_timeout = std::chrono::seconds(300);
    std::size_t max_line = 8192;
    Duration line_timeout = std::chrono::seconds(30);  // a line must be complete this long after it began (0: never)
    // Access control and abuse limits (docs/security.md).
    std::vector<Cidr> allow;      // empty: everyone not denied
    std::vector<Cidr> deny;       // wins over allow
    long long max_per_source = 64;  // concurrent TCP connections from one address (0: no limit)
    Rate connect_rate;            // new TCP connections per source (off by default)
    Rate udp_rate{100, 200};      // datagrams per source
    std::size_t udp_max_reply = 0;  // cap on a UDP reply's size (0: the datagram limit)
    int udp_batch = 16;           // datagrams taken per recvmmsg/sent per sendmmsg
    // Behind a load balancer (docs/security.md, "PROXY protocol"): TCP and TLS
    // connections from proxy_from open with a header naming the client, whose
    // address then counts for ACLs, limits, logs and metrics.
    ProxyProtocol proxy_protocol = ProxyProtocol::off;
    std::vector<Cidr> proxy_from;  // required when proxy_protocol is on; others are refused
    Duration proxy_timeout = std::chrono::seconds(3);  // the whole header must arrive within this
};

// [metrics]: its listeners go through the framework's accept loop like an
// instance's, with the same limits (small defaults: a scraper or two).
struct MetricsConfig {
    std::vector<Endpoint> http;  // where GET /metrics, /healthz, /instances are served
    std::vector<Endpoint> https;  // the same, inside TLS
    TlsSettings tls_settings;
    std::shared_ptr<const TlsContext> tls;  // loaded when `https` is set
    long long max_connections = 16;
    long long max_per_source = 8;
    Rate connect_rate;             // off by default
    std::vector<Cidr> allow, deny;
    Duration idle_timeout = std::chrono::seconds(5);  // a client silent this long is closed
};

struct InstanceConfig {
    std::string name;          // the section name
    std::string service_type;  // `service` key, or the section name
    InstanceOptions options;
    std::shared_ptr<Service> service;  // built from the section; shared by the instance's sessions
    std::shared_ptr<const TlsContext> tls;  // loaded from tls_cert and tls_key when set
    std::vector<std::pair<std::string, std::string>> effective;
};

struct Config {
    std::string file;
    ServerConfig server;
    MetricsConfig metrics;
    std::vector<InstanceConfig> instances;  // enabled and disabled, in file order
};

// Reads and validates a whole configuration. Throws ConfigError.
Config load_config_file(const std::string& path);
Config load_config_text(std::string_view text, const std::string& name = "<config>");

// The effective configuration, as printed by `coserved --check-config`.
std::string describe(const Config& config);

}  // namespace coserve
