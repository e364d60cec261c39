// Internal: per-instance access control and per-source abuse limits
// (allow/deny, max_per_source, connect_rate, udp_rate), and the UDP
// anti-reflection rules. Thread-safe; one lock per instance, taken once per
// accepted connection or datagram, never per byte.
#pragma once

#include <coserve/config.hpp>
#include <coserve/token_bucket.hpp>

#include <boost/asio/ip/address.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace coserve::detail {

enum class Refusal : std::uint8_t {
    none,
    limit,           // the instance's or the process's max_connections
    acl,             // allow/deny
    per_source,      // max_per_source
    rate,            // connect_rate or udp_rate
    reflector_port,  // UDP from port 0 or a classic service port (7, 9, 13, 17, 19, 37)
    own_port,        // UDP from a port this coserved serves
    bad_source,      // UDP from a multicast, broadcast or unspecified address
    table_full,      // too many sources tracked at once
    proxy_from,      // proxy_protocol on, and the connection is not from proxy_from
    proxy_header,    // proxy_protocol on, and no valid header within proxy_timeout
    count_
};
const char* refusal_name(Refusal r) noexcept;
constexpr std::size_t refusal_count = static_cast<std::size_t>(Refusal::count_);
// Which reasons can close a TCP connection at accept, and which can drop a
// datagram: the one list /metrics and the SIGUSR1 status both use.
constexpr bool refuses_connections(Refusal r) noexcept {
    return r == Refusal::limit || r == Refusal::acl || r == Refusal::per_source || r == Refusal::rate ||
           r == Refusal::table_full || r == Refusal::proxy_from || r == Refusal::proxy_header;
}
constexpr bool drops_datagrams(Refusal r) noexcept {
    return r == Refusal::acl || r == Refusal::rate || r == Refusal::reflector_port || r == Refusal::own_port ||
           r == Refusal::bad_source || r == Refusal::table_full;
}

class SourceLimits {
public:
    explicit SourceLimits(const InstanceOptions& options);

    bool allowed(const boost::asio::ip::address& a) const noexcept;  // allow/deny only
    // A new TCP connection: allow/deny, max_per_source, connect_rate. On
    // Refusal::none the connection is counted until release().
    Refusal admit_connection(const boost::asio::ip::address& a);
    void release(const boost::asio::ip::address& a);
    // A datagram: allow/deny and udp_rate (the port rules are the caller's).
    Refusal admit_datagram(const boost::asio::ip::address& a);
    // True at most once a minute per source: whether to log a refusal now.
    bool should_log(const boost::asio::ip::address& a);

    static constexpr std::size_t max_sources = 65536;

private:
    using Key = std::array<unsigned char, 16>;
    struct KeyHash {
        std::size_t operator()(const Key& k) const noexcept;
    };
    struct Entry {
        long long connections = 0;
        TokenBucket connects, datagrams;
        std::chrono::steady_clock::time_point seen{}, logged{};
    };
    static Key key(const boost::asio::ip::address& a) noexcept;
    Entry* entry(const Key& k, std::chrono::steady_clock::time_point now);  // mutex held; nullptr when full

    std::vector<Cidr> allow_, deny_;
    long long max_per_source_;
    Rate connect_rate_, udp_rate_;
    std::mutex mutex_;
    std::unordered_map<Key, Entry, KeyHash> table_;
};

// The UDP rules that need no state: a datagram from port 0, a classic
// reflector port, or a multicast/broadcast/unspecified address is refused.
Refusal udp_source_refusal(const boost::asio::ip::address& a, unsigned short port) noexcept;

}  // namespace coserve::detail
