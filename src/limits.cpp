#include "limits.hpp"

#include <algorithm>
#include <cstring>

namespace coserve::detail {

namespace ip = boost::asio::ip;
using clock = std::chrono::steady_clock;

const char* refusal_name(Refusal r) noexcept {
    switch (r) {
    case Refusal::none: return "none";
    case Refusal::limit: return "limit";
    case Refusal::acl: return "acl";
    case Refusal::per_source: return "per_source";
    case Refusal::rate: return "rate";
    case Refusal::reflector_port: return "reflector_port";
    case Refusal::own_port: return "own_port";
    case Refusal::bad_source: return "bad_source";
    case Refusal::table_full: return "table_full";
    case Refusal::proxy_from: return "proxy_from";
    case Refusal::proxy_header: return "proxy_header";
    case Refusal::count_: break;
    }
    return "unknown";
}

SourceLimits::SourceLimits(const InstanceOptions& o)
    : allow_(o.allow), deny_(o.deny), max_per_source_(o.max_per_source), connect_rate_(o.connect_rate),
      udp_rate_(o.udp_rate) {}

std::size_t SourceLimits::KeyHash::operator()(const Key& k) const noexcept {
    std::uint64_t a = 0, b = 0;
    std::memcpy(&a, k.data(), 8);
    std::memcpy(&b, k.data() + 8, 8);
    return static_cast<std::size_t>(a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull + (a << 6) + (a >> 2)));
}

SourceLimits::Key SourceLimits::key(const ip::address& a) noexcept {
    // IPv4 and IPv4-mapped IPv6 are the same source.
    if (a.is_v4()) return ip::make_address_v6(ip::v4_mapped, a.to_v4()).to_bytes();
    return a.to_v6().to_bytes();
}

bool SourceLimits::allowed(const ip::address& a) const noexcept {
    for (const auto& c : deny_)
        if (c.contains(a)) return false;
    if (allow_.empty()) return true;
    return std::any_of(allow_.begin(), allow_.end(), [&](const Cidr& c) { return c.contains(a); });
}

SourceLimits::Entry* SourceLimits::entry(const Key& k, clock::time_point now) {
    auto it = table_.find(k);
    if (it != table_.end()) {
        it->second.seen = now;
        return &it->second;
    }
    if (table_.size() >= max_sources) {
        // Forget the sources that hold nothing and were quiet for a minute.
        std::erase_if(table_, [&](const auto& kv) {
            return kv.second.connections == 0 && now - kv.second.seen > std::chrono::minutes(1);
        });
        if (table_.size() >= max_sources) return nullptr;
    }
    Entry& e = table_[k];
    e.connects = TokenBucket(connect_rate_, now);
    e.datagrams = TokenBucket(udp_rate_, now);
    e.seen = now;
    return &e;
}

Refusal SourceLimits::admit_connection(const ip::address& a) {
    if (!allowed(a)) return Refusal::acl;
    if (max_per_source_ == 0 && !connect_rate_.limited()) return Refusal::none;  // nothing to track
    const auto now = clock::now();
    std::lock_guard lock(mutex_);
    Entry* e = entry(key(a), now);
    if (!e) return Refusal::table_full;
    if (max_per_source_ > 0 && e->connections >= max_per_source_) return Refusal::per_source;
    if (connect_rate_.limited() && !e->connects.take(connect_rate_, now)) return Refusal::rate;
    ++e->connections;
    return Refusal::none;
}

void SourceLimits::release(const ip::address& a) {
    if (max_per_source_ == 0 && !connect_rate_.limited()) return;
    std::lock_guard lock(mutex_);
    auto it = table_.find(key(a));
    if (it != table_.end() && it->second.connections > 0) --it->second.connections;
}

Refusal SourceLimits::admit_datagram(const ip::address& a) {
    if (!allowed(a)) return Refusal::acl;
    if (!udp_rate_.limited()) return Refusal::none;
    const auto now = clock::now();
    std::lock_guard lock(mutex_);
    Entry* e = entry(key(a), now);
    if (!e) return Refusal::table_full;
    return e->datagrams.take(udp_rate_, now) ? Refusal::none : Refusal::rate;
}

bool SourceLimits::should_log(const ip::address& a) {
    const auto now = clock::now();
    std::lock_guard lock(mutex_);
    Entry* e = entry(key(a), now);
    if (!e) return false;
    if (e->logged != clock::time_point{} && now - e->logged < std::chrono::minutes(1)) return false;
    e->logged = now;
    return true;
}

Refusal udp_source_refusal(const ip::address& raw, unsigned short port) noexcept {
    ip::address a = raw;
    if (a.is_v6() && a.to_v6().is_v4_mapped()) a = ip::make_address_v4(ip::v4_mapped, a.to_v6());
    if (a.is_unspecified() || a.is_multicast()) return Refusal::bad_source;
    if (a.is_v4() && a.to_v4() == ip::address_v4::broadcast()) return Refusal::bad_source;
    switch (port) {
    case 0: case 7: case 9: case 13: case 17: case 19: case 37: return Refusal::reflector_port;
    default: return Refusal::none;
    }
}

}  // namespace coserve::detail
