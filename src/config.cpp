// INI configuration: syntax through Boost.Program_options, values validated here.
#include <coserve/config.hpp>
#include <coserve/service.hpp>

#include "plugin.hpp"
#include "reload_plan.hpp"
#include "tls.hpp"

#include <boost/program_options/parsers.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

namespace coserve {
namespace {

namespace po = boost::program_options;
namespace ip = boost::asio::ip;

std::string quote_text(std::string_view s) {
    return '"' + std::string(s) + '"';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

bool parse_unsigned(std::string_view s, unsigned long long& out) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

// ---- endpoints -------------------------------------------------------------

std::string Endpoint::to_string() const {
    if (any) return "*:" + std::to_string(port);
    if (address.is_v6()) return "[" + address.to_string() + "]:" + std::to_string(port);
    return address.to_string() + ":" + std::to_string(port);
}

bool Endpoint::overlaps(const Endpoint& o) const {
    if (port == 0 || port != o.port) return false;
    return any || o.any || address == o.address;
}

Endpoint parse_endpoint(std::string_view text) {
    text = trim(text);
    Endpoint e;
    std::string_view host, port;
    if (text.starts_with('[')) {
        auto close = text.find(']');
        if (close == std::string_view::npos) throw std::invalid_argument("missing ']' in " + quote_text(text));
        host = text.substr(1, close - 1);
        auto rest = text.substr(close + 1);
        if (!rest.starts_with(':')) throw std::invalid_argument("expected ':port' after ']' in " + quote_text(text));
        port = rest.substr(1);
        boost::system::error_code ec;
        auto a = ip::make_address_v6(std::string(host), ec);
        if (ec) throw std::invalid_argument("bad IPv6 address " + quote_text(host));
        e.address = a;
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos)
            throw std::invalid_argument("expected host:port, got " + quote_text(text));
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            throw std::invalid_argument("IPv6 addresses need brackets, e.g. [::1]:7007, got " + quote_text(text));
        if (host == "*") {
            e.any = true;
        } else {
            boost::system::error_code ec;
            auto a = ip::make_address_v4(std::string(host), ec);
            if (ec)
                throw std::invalid_argument("host must be a numeric address (names are not resolved), got " +
                                            quote_text(host));
            e.address = a;
        }
    }
    unsigned long long p = 0;
    if (!parse_unsigned(port, p) || p > 65535)
        throw std::invalid_argument("bad port " + quote_text(port) + " (expected 0-65535)");
    e.port = static_cast<std::uint16_t>(p);
    return e;
}

std::vector<Endpoint> parse_endpoint_list(std::string_view text) {
    std::vector<Endpoint> out;
    if (trim(text).empty()) return out;
    std::size_t start = 0;
    while (true) {
        auto comma = text.find(',', start);
        auto item = trim(text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
        if (item.empty()) throw std::invalid_argument("empty item in endpoint list " + quote_text(text));
        Endpoint e = parse_endpoint(item);
        for (const auto& prev : out)
            if (prev.overlaps(e) || prev == e) throw std::invalid_argument(e.to_string() + " listed twice");
        out.push_back(e);
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return out;
}

// ---- address ranges and rates -----------------------------------------------

namespace {
ip::address unmapped(const ip::address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
    return a;
}
}  // namespace

bool Cidr::contains(const ip::address& raw) const noexcept {
    const ip::address a = unmapped(raw);
    if (a.is_v4() != network.is_v4()) return false;
    if (a.is_v4()) {
        const auto mask = prefix == 0 ? 0u : ~0u << (32 - prefix);
        return (a.to_v4().to_uint() & mask) == (network.to_v4().to_uint() & mask);
    }
    const auto x = a.to_v6().to_bytes(), n = network.to_v6().to_bytes();
    unsigned bits = prefix;
    for (std::size_t i = 0; i < 16 && bits > 0; ++i) {
        const unsigned take = bits >= 8 ? 8 : bits;
        const auto mask = static_cast<unsigned char>(0xFF << (8 - take));
        if ((x[i] & mask) != (n[i] & mask)) return false;
        bits -= take;
    }
    return true;
}

std::string Cidr::to_string() const {
    return network.to_string() + "/" + std::to_string(prefix);
}

Cidr parse_cidr(std::string_view text) {
    text = trim(text);
    const auto slash = text.find('/');
    const std::string host(text.substr(0, slash));
    boost::system::error_code ec;
    auto address = ip::make_address(host, ec);
    if (ec) throw std::invalid_argument("bad address " + quote_text(host) + " (expected e.g. 10.0.0.0/8 or ::1)");
    const unsigned max = address.is_v4() ? 32 : 128;
    unsigned long long prefix = max;
    if (slash != std::string_view::npos && (!parse_unsigned(text.substr(slash + 1), prefix) || prefix > max))
        throw std::invalid_argument("bad prefix length in " + quote_text(text) + " (0 to " + std::to_string(max) + ")");
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {  // ::ffff:a.b.c.d/n is a.b.c.d/(n-96)
        if (prefix < 96) throw std::invalid_argument("prefix of an IPv4-mapped range must be 96 or more in " + quote_text(text));
        address = unmapped(address);
        prefix -= 96;
    }
    return Cidr{address, static_cast<unsigned>(prefix)};
}

Rate parse_rate(std::string_view text) {
    text = trim(text);
    if (text == "0") return {};
    const auto slash = text.find('/');
    unsigned long long n = 0;
    const auto unit = slash == std::string_view::npos ? std::string_view() : text.substr(slash + 1);
    const double per = unit == "s" ? 1 : unit == "m" ? 60 : 0;
    if (per == 0 || !parse_unsigned(text.substr(0, slash), n) || n == 0 || n > 1'000'000)
        throw std::invalid_argument("expected N/s or N/m (N from 1 to 1000000) or 0, got " + quote_text(text));
    return Rate{static_cast<double>(n) / per, static_cast<double>(n)};
}

// ---- durations -------------------------------------------------------------

Duration parse_duration(std::string_view text) {
    text = trim(text);
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    unsigned long long n = 0;
    if (digits == 0 || !parse_unsigned(text.substr(0, digits), n))
        throw std::invalid_argument("bad duration " + quote_text(text) + " (expected e.g. 250ms, 30s, 5m, 1h)");
    auto unit = text.substr(digits);
    unsigned long long ms_per = 0;
    if (unit == "ms") ms_per = 1;
    else if (unit == "s") ms_per = 1000;
    else if (unit == "m") ms_per = 60'000;
    else if (unit == "h") ms_per = 3'600'000;
    else if (unit.empty() && n == 0) ms_per = 1;
    else
        throw std::invalid_argument("bad duration " + quote_text(text) + " (units: ms, s, m, h)");
    if (n > static_cast<unsigned long long>(std::numeric_limits<long long>::max()) / ms_per)
        throw std::invalid_argument("duration " + quote_text(text) + " is too large");
    return Duration(static_cast<long long>(n * ms_per));
}

std::string format_duration(Duration d) {
    auto ms = d.count();
    if (ms == 0) return "0";
    if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

// ---- severities ------------------------------------------------------------

namespace {
constexpr std::string_view severity_names[] = {"trace", "debug", "info", "warning", "error", "fatal"};
}

Severity parse_severity(std::string_view text) {
    for (std::size_t i = 0; i < std::size(severity_names); ++i)
        if (text == severity_names[i]) return static_cast<Severity>(i);
    throw std::invalid_argument("unknown log level " + quote_text(text) +
                                " (expected trace, debug, info, warning, error or fatal)");
}

std::string_view severity_name(Severity s) {
    return severity_names[static_cast<std::size_t>(s)];
}

// ---- sections --------------------------------------------------------------

Section::Section(std::string file, std::string name, std::vector<std::pair<std::string, std::string>> values)
    : file_(std::move(file)), name_(std::move(name)), values_(std::move(values)), used_(values_.size(), false) {}

void Section::fail(std::string_view key, std::string_view message) const {
    std::string where = file_ + ": [" + name_ + "]";
    if (!key.empty()) where += " " + std::string(key);
    throw ConfigError(where + ": " + std::string(message));
}

const std::string* Section::find(std::string_view key) {
    const std::string* found = nullptr;
    for (std::size_t i = 0; i < values_.size(); ++i) {
        if (values_[i].first != key) continue;
        if (found) fail(key, "set more than once");
        used_[i] = true;
        found = &values_[i].second;
    }
    return found;
}

void Section::record(std::string_view key, std::string value) {
    effective_.emplace_back(std::string(key), std::move(value));
}

std::optional<std::string> Section::raw(std::string_view key) {
    if (auto v = find(key)) return *v;
    return std::nullopt;
}

long long Section::integer(std::string_view key, long long def, long long min, long long max) {
    long long value = def;
    if (auto v = find(key)) {
        auto t = trim(*v);
        auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
        if (t.empty() || ec != std::errc() || p != t.data() + t.size() || value < min || value > max)
            fail(key, "expected an integer from " + std::to_string(min) + " to " + std::to_string(max) + ", got " +
                          quote_text(*v));
    }
    record(key, std::to_string(value));
    return value;
}

Duration Section::duration(std::string_view key, Duration def, Duration min, Duration max) {
    Duration value = def;
    if (auto v = find(key)) {
        try {
            value = parse_duration(*v);
        } catch (const std::invalid_argument& e) {
            fail(key, e.what());
        }
        if (value < min || value > max)
            fail(key, "expected a duration from " + format_duration(min) + " to " + format_duration(max) + ", got " +
                          quote_text(*v));
    }
    record(key, format_duration(value));
    return value;
}

bool Section::boolean(std::string_view key, bool def) {
    bool value = def;
    if (auto v = find(key)) {
        auto t = trim(*v);
        if (t == "true" || t == "yes" || t == "on" || t == "1") value = true;
        else if (t == "false" || t == "no" || t == "off" || t == "0") value = false;
        else fail(key, "expected true or false, got " + quote_text(*v));
    }
    record(key, value ? "true" : "false");
    return value;
}

std::string Section::text(std::string_view key, std::string_view def) {
    if (auto v = find(key)) {
        std::string_view t = trim(*v);
        if (t.size() >= 2 && t.front() == '"' && t.back() == '"') t = t.substr(1, t.size() - 2);
        return std::string(t);
    }
    return std::string(def);
}

std::string Section::string(std::string_view key, std::string_view def) {
    std::string value = text(key, def);
    record(key, quote_text(value));
    return value;
}

std::string Section::secret(std::string_view key) {
    std::string value = text(key, "");
    record(key, value.empty() ? quote_text("") : std::string("(set, not shown)"));
    return value;
}

std::string Section::choice(std::string_view key, std::string_view def, std::initializer_list<std::string_view> allowed) {
    std::string value(def);
    if (auto v = find(key)) {
        auto t = trim(*v);
        if (std::find(allowed.begin(), allowed.end(), t) == allowed.end()) {
            std::string list;
            for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
            fail(key, "expected one of " + list + ", got " + quote_text(*v));
        }
        value = t;
    }
    record(key, value);
    return value;
}

std::vector<Endpoint> Section::endpoints(std::string_view key) {
    std::vector<Endpoint> out;
    if (auto v = find(key)) {
        try {
            out = parse_endpoint_list(*v);
        } catch (const std::invalid_argument& e) {
            fail(key, e.what());
        }
    }
    std::string text;
    for (const auto& e : out) text += (text.empty() ? "" : ", ") + e.to_string();
    record(key, text.empty() ? "(none)" : text);
    return out;
}

std::vector<Cidr> Section::cidrs(std::string_view key) {
    std::vector<Cidr> out;
    if (auto v = find(key)) {
        std::string_view rest = *v;
        while (!trim(rest).empty()) {
            const auto comma = rest.find(',');
            try {
                out.push_back(parse_cidr(rest.substr(0, comma)));
            } catch (const std::invalid_argument& e) {
                fail(key, e.what());
            }
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    std::string text;
    for (const auto& c : out) text += (text.empty() ? "" : ", ") + c.to_string();
    record(key, text.empty() ? "(none)" : text);
    return out;
}

Rate Section::rate(std::string_view key, std::string_view def, std::string_view burst_key, long long burst_def) {
    Rate r;
    std::string shown(def);
    try {
        if (auto v = find(key)) {
            shown = std::string(trim(*v));
            r = parse_rate(*v);
        } else {
            r = parse_rate(def);
        }
    } catch (const std::invalid_argument& e) {
        fail(key, e.what());
    }
    record(key, shown);
    if (!burst_key.empty()) {
        const long long b = integer(burst_key, burst_def > 0 ? burst_def : static_cast<long long>(r.burst > 0 ? r.burst : 1), 1, 1'000'000);
        r.burst = static_cast<double>(b);
    }
    return r;
}

std::uint64_t Section::bytes(std::string_view key, std::uint64_t def, std::uint64_t max) {
    std::uint64_t value = def;
    if (auto v = find(key)) {
        auto t = trim(*v);
        std::uint64_t unit = 1;
        if (!t.empty()) {
            switch (t.back()) {
            case 'K': case 'k': unit = 1ull << 10; break;
            case 'M': case 'm': unit = 1ull << 20; break;
            case 'G': case 'g': unit = 1ull << 30; break;
            default: break;
            }
            if (unit != 1) t.remove_suffix(1);
        }
        unsigned long long n = 0;
        if (!parse_unsigned(t, n) || n > max / unit)
            fail(key, "expected a size from 0 to " + std::to_string(max) + " bytes (e.g. 65536, 64K, 10M, 1G), got " +
                          quote_text(*v));
        value = n * unit;
    }
    record(key, std::to_string(value));
    return value;
}

std::string Section::path(std::string_view key, std::string_view def) {
    std::string value = text(key, def);
    if (!value.empty() && value.front() != '/') {
        const auto slash = file_.rfind('/');
        if (slash != std::string::npos) value = file_.substr(0, slash + 1) + value;
        std::error_code ec;
        auto absolute = std::filesystem::absolute(value, ec);
        if (!ec) value = absolute.lexically_normal().string();
    }
    record(key, quote_text(value));
    return value;
}

void Section::finish() const {
    for (std::size_t i = 0; i < values_.size(); ++i)
        if (!used_[i]) fail(values_[i].first, "unknown key");
}

// ---- whole files -----------------------------------------------------------

namespace {

// Program_options' INI parser knows '#' comments only; coserve also accepts
// ';' comments (at the start of a line or after whitespace, so values may hold
// a ';' that follows a non-blank). Section headers are noted here too, so
// sections without keys still count and file order is kept.
std::string strip_comments(std::string_view text, std::vector<std::string>& sections) {
    std::string out;
    out.reserve(text.size());
    std::size_t pos = 0;
    while (pos <= text.size()) {
        auto nl = text.find('\n', pos);
        auto line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        for (std::size_t i = 0; i < line.size(); ++i) {
            if ((line[i] == ';' || line[i] == '#') && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
                line = line.substr(0, i);
                break;
            }
        }
        auto t = trim(line);
        if (t.size() >= 2 && t.front() == '[' && t.back() == ']') sections.emplace_back(trim(t.substr(1, t.size() - 2)));
        out.append(line);
        out.push_back('\n');
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    return out;
}

void check_conflicts(const Config& config) {
    struct Use {
        const InstanceConfig* instance;
        Endpoint endpoint;
    };
    for (const bool stream : {true, false}) {  // every stream listener (tcp, tls, front-ends) shares TCP ports
        std::vector<Use> seen;
        for (const auto& inst : config.instances) {
            if (!inst.options.enabled) continue;
            for (const auto& [kind, e] : detail::listeners(inst.options, stream)) {
                for (const auto& u : seen)
                    if (u.endpoint.overlaps(e))
                        throw ConfigError(config.file + ": [" + inst.name + "] " + kind + ": " + e.to_string() +
                                          " is already used by [" + u.instance->name + "] (" + u.endpoint.to_string() +
                                          ")");
                seen.push_back({&inst, e});
            }
        }
    }
}

constexpr std::string_view tls_keys[] = {"tls_cert", "tls_key", "tls_min_version", "tls_ciphers", "tls_ciphersuites",
                                         "tls_client_ca", "tls_client_auth", "tls_handshake_timeout"};

// The tls_* keys, read (and shown by --check-config) when TLS listeners or
// any of the keys are there; then the files are loaded and checked.
std::shared_ptr<const TlsContext> load_tls(Section& s, std::string_view listeners_key, bool has_listeners,
                                           TlsSettings& t) {
    const bool any_key = std::any_of(std::begin(tls_keys), std::end(tls_keys), [&](auto k) { return s.raw(k).has_value(); });
    if (!has_listeners && !any_key) return nullptr;
    t.cert = s.path("tls_cert", "");
    t.key = s.path("tls_key", "");
    t.min_version = s.choice("tls_min_version", "1.2", {"1.2", "1.3"});
    t.ciphers = s.string("tls_ciphers", "");
    t.ciphersuites = s.string("tls_ciphersuites", "");
    t.client_ca = s.path("tls_client_ca", "");
    const auto auth = s.choice("tls_client_auth", "none", {"none", "optional", "require"});
    t.client_auth = auth == "require"    ? TlsSettings::ClientAuth::require
                    : auth == "optional" ? TlsSettings::ClientAuth::optional
                                         : TlsSettings::ClientAuth::none;
    t.handshake_timeout = s.duration("tls_handshake_timeout", std::chrono::seconds(10), std::chrono::milliseconds(100),
                                     std::chrono::minutes(10));
    if (t.cert.empty() && has_listeners)
        s.fail("tls_cert", "is needed by " + std::string(listeners_key) + " (a PEM file: the certificate, then its chain)");
    try {
        return TlsContext::load(t);
    } catch (const TlsContext::Error& e) {
        s.fail(e.key, e.what());
    }
}

// proxy_protocol and its keys; proxy_from and proxy_timeout are read (and
// shown) only when it is on, and proxy_from is required then.
void load_proxy(Section& s, InstanceOptions& o) {
    const auto mode = s.choice("proxy_protocol", "off", {"off", "v1", "v2", "any"});
    o.proxy_protocol = mode == "v1" ? ProxyProtocol::v1 : mode == "v2" ? ProxyProtocol::v2
                     : mode == "any" ? ProxyProtocol::any : ProxyProtocol::off;
    if (o.proxy_protocol == ProxyProtocol::off) {
        for (auto key : {"proxy_from", "proxy_timeout"})
            if (s.raw(key)) s.fail(key, "is set, but proxy_protocol = off (set proxy_protocol = v1, v2 or any)");
        return;
    }
    o.proxy_from = s.cidrs("proxy_from");
    if (o.proxy_from.empty())
        s.fail("proxy_from", "is needed by proxy_protocol = " + std::string(mode) +
                                 ": the addresses of the proxies allowed to send the header (CIDRs)");
    if (detail::listeners(o, true).empty()) s.fail("proxy_protocol", "is for TCP and TLS listeners, and there are none");
    o.proxy_timeout = s.duration("proxy_timeout", std::chrono::seconds(3), std::chrono::milliseconds(100),
                                 std::chrono::minutes(1));
}

InstanceConfig load_instance(Section& s) {
    InstanceConfig inst;
    inst.name = s.name();
    auto type_name = s.raw("service");
    inst.service_type = type_name ? std::string(trim(*type_name)) : s.name();
    const ServiceType* type = nullptr;
    std::string plugin_file;
    if (s.raw("plugin")) {
        const auto plugin = s.path("plugin", "");
        if (plugin.empty()) s.fail("plugin", "expected the path of a plugin file (a .so)");
        try {
            const auto loaded = load_plugin(plugin);
            type = loaded.type;
            plugin_file = loaded.file;
        } catch (const std::runtime_error& e) {
            s.fail("plugin", quote_text(plugin) + ": " + e.what());
        }
        if (type_name && inst.service_type != type->name)
            s.fail("service", "the plugin provides the service type " + std::string(type->name) + ", not " +
                                  quote_text(inst.service_type));
        inst.service_type = type->name;
    } else {
        type = find_service_type(inst.service_type);
    }
    if (!type) {
        std::string known;
        for (const auto* t : service_types()) known += (known.empty() ? "" : ", ") + std::string(t->name);
        if (type_name) s.fail("service", "unknown service type " + quote_text(inst.service_type) + " (known: " + known + ")");
        s.fail("", "unknown service type " + quote_text(inst.service_type) +
                       "; name a known one with `service = TYPE` (known: " + known + ")");
    }
    auto& o = inst.options;
    o.enabled = s.boolean("enabled", true);
    o.tcp = s.endpoints("tcp");
    o.udp = s.endpoints("udp");
    o.tls = s.endpoints("tls");
    if (!type->tcp && !o.tcp.empty()) s.fail("tcp", "the " + inst.service_type + " service has no TCP side");
    if (!type->tcp && !o.tls.empty()) s.fail("tls", "the " + inst.service_type + " service has no TCP side");
    if (!type->udp && !o.udp.empty()) s.fail("udp", "the " + inst.service_type + " service has no UDP side");
    std::string tls_listeners_key = o.tls.empty() ? "" : "tls";
    for (const auto name : type->front_ends) {
        const std::string tls_key = std::string(name) + "_tls";
        auto& fe = o.front_ends.emplace_back(FrontEndListeners{std::string(name), s.endpoints(name), s.endpoints(tls_key)});
        if (tls_listeners_key.empty() && !fe.tls.empty()) tls_listeners_key = tls_key;
    }
    o.max_connections = s.integer("max_connections", 1000, 1, 10'000'000);
    o.idle_timeout = s.duration("idle_timeout", std::chrono::seconds(300));
    o.max_line = static_cast<std::size_t>(
        s.integer("max_line", static_cast<long long>(type->max_line_default), 1, 64 << 20));
    o.line_timeout = s.duration("line_timeout", std::chrono::seconds(30));
    o.allow = s.cidrs("allow");
    o.deny = s.cidrs("deny");
    o.max_per_source = s.integer("max_per_source", 64, 0, 10'000'000);
    o.connect_rate = s.rate("connect_rate", "0", "connect_burst");
    o.udp_rate = s.rate("udp_rate", "100/s", "udp_burst", 200);
    o.udp_max_reply = static_cast<std::size_t>(s.integer("udp_max_reply", 0, 0, 65507));
    o.udp_batch = static_cast<int>(s.integer("udp_batch", 16, 1, 256));
    load_proxy(s, o);
    inst.tls = load_tls(s, tls_listeners_key, !tls_listeners_key.empty(), o.tls_settings);
    try {
        inst.service = type->create(s, o);
    } catch (const ConfigError&) {
        throw;
    } catch (const std::exception& e) {  // a plugin's factory, say, that let std::stoi throw
        s.fail("", std::string("the service could not be set up: ") + e.what());
    }
    s.finish();
    inst.effective = s.effective();
    // The file really loaded: a reload that points a symbolic link elsewhere changes the instance.
    for (auto& [key, value] : inst.effective)
        if (key == "plugin") value = quote_text(plugin_file);
    return inst;
}

}  // namespace

namespace {

using Values = std::map<std::string, std::vector<std::pair<std::string, std::string>>>;

// The file's keys by section, and its section names in file order (each once).
Values parse_ini(std::string_view text, const std::string& name, std::vector<std::string>& sections) {
    std::vector<std::string> order;
    std::istringstream in(strip_comments(text, order));
    po::parsed_options parsed(nullptr);
    try {
        parsed = po::parse_config_file(in, po::options_description(), true);
    } catch (const po::invalid_syntax& e) {
        // Not e.what(): it loops forever when the line itself contains
        // "%invalid_line%" (its placeholder; found by fuzz/config.cpp).
        throw ConfigError(name + ": invalid line " + quote_text(e.tokens()) + " (expected key = value, or [section])");
    } catch (const po::error& e) {
        throw ConfigError(name + ": " + e.what());
    }
    Values values;
    for (const auto& opt : parsed.options) {
        auto dot = opt.string_key.rfind('.');
        if (dot == std::string::npos)
            throw ConfigError(name + ": key " + quote_text(opt.string_key) + " is outside any [section]");
        values[opt.string_key.substr(0, dot)].emplace_back(opt.string_key.substr(dot + 1),
                                                           opt.value.empty() ? std::string() : opt.value.front());
    }
    for (const auto& sec : order) {
        if (sec.empty()) throw ConfigError(name + ": empty section name []");
        if (std::find(sections.begin(), sections.end(), sec) != sections.end())
            throw ConfigError(name + ": [" + sec + "] appears more than once");
        sections.push_back(sec);
    }
    return values;
}

ServerConfig load_server(Section& server) {
    ServerConfig c;
    c.threads = static_cast<int>(server.integer("threads", 1, 1, 256));
    c.loop_per_thread = server.choice("thread_model", "shared", {"shared", "per-thread"}) == "per-thread";
    try {
        c.log_level = parse_severity(server.choice("log_level", "info", {"trace", "debug", "info", "warning", "error", "fatal"}));
    } catch (const std::invalid_argument& e) {
        server.fail("log_level", e.what());
    }
    c.shutdown_grace = server.duration("shutdown_grace", std::chrono::seconds(5), Duration::zero(), std::chrono::hours(1));
    c.max_connections = server.integer("max_connections", 10000, 1, 10'000'000);
    c.log_file = server.path("log_file", "");
    c.log_json = server.choice("log_format", "text", {"text", "json"}) == "json";
    c.syslog = server.boolean("syslog", false);
    c.log_rotate_size = server.bytes("log_rotate_size", 0, 1ull << 40);
    if (c.log_rotate_size > 0 && c.log_file.empty()) server.fail("log_rotate_size", "needs log_file");
    if (c.syslog && !c.log_file.empty()) server.fail("syslog", "choose log_file or syslog, not both");
    c.pid_file = server.path("pid_file", "");
    c.user = server.string("user", "");
    c.group = server.string("group", "");
    if (!c.group.empty() && c.user.empty()) server.fail("group", "needs user");
    server.finish();
    return c;
}

MetricsConfig load_metrics(Section& metrics) {
    MetricsConfig c;
    c.http = metrics.endpoints("http");
    c.https = metrics.endpoints("https");
    c.max_connections = metrics.integer("max_connections", 16, 1, 10'000'000);
    c.max_per_source = metrics.integer("max_per_source", 8, 0, 10'000'000);
    c.connect_rate = metrics.rate("connect_rate", "0", "connect_burst");
    c.allow = metrics.cidrs("allow");
    c.deny = metrics.cidrs("deny");
    c.idle_timeout = metrics.duration("idle_timeout", std::chrono::seconds(5), std::chrono::milliseconds(100), std::chrono::hours(1));
    c.tls = load_tls(metrics, "https", !c.https.empty(), c.tls_settings);
    metrics.finish();
    return c;
}

}  // namespace

Config load_config_text(std::string_view text, const std::string& name) {
    Config config;
    config.file = name;
    std::vector<std::string> sections;
    Values values = parse_ini(text, name, sections);
    Section server(name, "server", values["server"]);
    config.server = load_server(server);
    Section metrics(name, "metrics", values["metrics"]);
    config.metrics = load_metrics(metrics);
    for (const auto& sec : sections) {
        if (sec == "server" || sec == "metrics") continue;
        Section s(name, sec, values[sec]);
        config.instances.push_back(load_instance(s));
    }
    check_conflicts(config);
    return config;
}

Config load_config_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfigError("cannot read config file " + path + ": " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    return load_config_text(text.str(), path);
}

std::string describe(const Config& config) {
    std::ostringstream out;
    out << "[server] threads = " << config.server.threads
        << ", thread_model = " << (config.server.loop_per_thread ? "per-thread" : "shared") << ", log_level = " << severity_name(config.server.log_level)
        << ", shutdown_grace = " << format_duration(config.server.shutdown_grace)
        << ", max_connections = " << config.server.max_connections << "\n";
    if (!config.metrics.http.empty()) {
        out << "[metrics] http =";
        for (std::size_t i = 0; i < config.metrics.http.size(); ++i)
            out << (i ? ", " : " ") << config.metrics.http[i].to_string();
        out << ", max_connections = " << config.metrics.max_connections
            << ", max_per_source = " << config.metrics.max_per_source
            << ", idle_timeout = " << format_duration(config.metrics.idle_timeout) << "\n";
    }
    if (!config.metrics.https.empty()) {
        out << "[metrics] https =";
        for (std::size_t i = 0; i < config.metrics.https.size(); ++i)
            out << (i ? ", " : " ") << config.metrics.https[i].to_string();
        out << "\n";
    }
    if (config.metrics.tls) out << "    certificate: " << config.metrics.tls->describe() << "\n";
    for (const auto& inst : config.instances) {
        out << "[" << inst.name << "] service " << inst.service_type
            << (inst.options.enabled ? "" : " (disabled)") << "\n";
        for (const auto& [k, v] : inst.effective) out << "    " << k << " = " << v << "\n";
        if (inst.tls) out << "    certificate: " << inst.tls->describe() << "\n";
    }
    return out.str();
}

}  // namespace coserve
