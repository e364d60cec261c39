#include "proxy_header.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <string>

namespace coserve::detail::proxy {
namespace {

namespace ip = boost::asio::ip;

constexpr std::array<unsigned char, 12> v2_signature{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::string_view v1_prefix = "PROXY ";

std::uint16_t port_v1(std::string_view text) {
    std::uint16_t port = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (text.empty() || text.size() > 5 || ec != std::errc() || end != text.data() + text.size() ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        throw Error("v1: a port is not a number from 0 to 65535");
    return port;
}

ip::address address_v1(std::string_view text, bool v6) {
    // Numeric only; a '%' scope id would make Asio look up an interface name.
    if (text.empty() || text.size() > 45 ||
        text.find_first_not_of(v6 ? "0123456789abcdefABCDEF:." : "0123456789.") != std::string_view::npos)
        throw Error(v6 ? "v1: TCP6 needs IPv6 addresses" : "v1: TCP4 needs IPv4 addresses");
    boost::system::error_code ec;
    const std::string s(text);
    ip::address a = v6 ? ip::address(ip::make_address_v6(s, ec)) : ip::address(ip::make_address_v4(s, ec));
    if (ec) throw Error(v6 ? "v1: TCP6 needs IPv6 addresses" : "v1: TCP4 needs IPv4 addresses");
    return a;
}

std::uint16_t be16(const unsigned char* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }

// The address block of a v2 family (the high nibble of byte 13): INET,
// INET6, UNIX; UNSPEC (and anything else) has none.
std::size_t address_block(unsigned family) {
    return family == 1 ? 12 : family == 2 ? 36 : family == 3 ? v2_address_max : 0;
}

}  // namespace

int detect(Bytes first, ProxyProtocol allowed) {
    if (first.size() < probe_size) throw Error("short header");
    int version = 0;
    if (std::equal(v2_signature.begin(), v2_signature.end(), first.begin())) version = 2;
    else if (std::equal(v1_prefix.begin(), v1_prefix.end(), first.begin())) version = 1;
    if (version == 0) throw Error("no PROXY protocol header");
    if (allowed == ProxyProtocol::v1 && version == 2) throw Error("a v2 header where proxy_protocol = v1");
    if (allowed == ProxyProtocol::v2 && version == 1) throw Error("a v1 header where proxy_protocol = v2");
    return version;
}

std::size_t v1_length(std::string_view data) {
    const auto lf = data.substr(0, v1_max).find('\n');
    if (lf == std::string_view::npos) {
        if (data.size() >= v1_max) throw Error("v1: no line end within 107 bytes");
        return 0;
    }
    return lf + 1;
}

Header parse_v1(std::string_view line) {
    if (line.size() > v1_max || line.size() < v1_prefix.size() + 2 || line.substr(0, v1_prefix.size()) != v1_prefix ||
        line.substr(line.size() - 2) != "\r\n")
        throw Error("v1: not a line \"PROXY ...\" ending in CRLF");
    std::string_view rest = line.substr(v1_prefix.size(), line.size() - v1_prefix.size() - 2);
    if (rest.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos)
        throw Error("v1: a CR, LF or NUL inside the line");
    Header h;
    h.version = 1;
    if (rest == "UNKNOWN" || rest.starts_with("UNKNOWN ")) return h;  // the rest is ignored, as the spec says
    std::array<std::string_view, 6> field{};
    std::size_t n = 0;
    for (;;) {
        const auto sp = rest.find(' ');
        if (n == field.size()) throw Error("v1: too many fields");
        field[n++] = rest.substr(0, sp);
        if (sp == std::string_view::npos) break;
        rest.remove_prefix(sp + 1);
    }
    if (field[0] != "TCP4" && field[0] != "TCP6") throw Error("v1: the protocol is not TCP4, TCP6 or UNKNOWN");
    if (n != 5) throw Error("v1: expected PROXY TCP4|TCP6 SOURCE DESTINATION SPORT DPORT");
    const bool v6 = field[0] == "TCP6";
    h.local = false;
    h.source = ip::tcp::endpoint(address_v1(field[1], v6), port_v1(field[3]));
    h.destination = ip::tcp::endpoint(address_v1(field[2], v6), port_v1(field[4]));
    return h;
}

std::size_t v2_length(Bytes fixed) {
    if (fixed.size() < v2_fixed) throw Error("short header");
    const unsigned version = fixed[12] >> 4, command = fixed[12] & 0x0F;
    if (version != 2) throw Error("v2: the version is not 2");
    if (command > 1) throw Error("v2: the command is neither LOCAL nor PROXY");
    const unsigned family = fixed[13] >> 4, transport = fixed[13] & 0x0F;
    if (command == 1 && (family > 3 || transport > 2)) throw Error("v2: unknown address family or transport");
    return be16(fixed.data() + 14);
}

std::size_t v2_keep(Bytes fixed) {
    const std::size_t length = v2_length(fixed);
    if ((fixed[12] & 0x0F) == 0) return 0;  // LOCAL: the address block is ignored
    return std::min(length, address_block(fixed[13] >> 4));
}

Header parse_v2(Bytes fixed, Bytes addresses) {
    const std::size_t length = v2_length(fixed);
    Header h;
    h.version = 2;
    if ((fixed[12] & 0x0F) == 0) return h;  // LOCAL: a health check from the proxy itself
    const unsigned family = fixed[13] >> 4, transport = fixed[13] & 0x0F;
    const std::size_t need = address_block(family);
    if (length < need || addresses.size() < need) throw Error("v2: the address block is shorter than its family needs");
    // UNSPEC, UNIX and datagrams: valid, but nothing a TCP server can use;
    // the spec's fallback is the connection's own endpoints.
    if (transport != 1 || (family != 1 && family != 2)) return h;
    const unsigned char* p = addresses.data();
    h.local = false;
    if (family == 1) {
        ip::address_v4::bytes_type s, d;
        std::memcpy(s.data(), p, 4);
        std::memcpy(d.data(), p + 4, 4);
        h.source = ip::tcp::endpoint(ip::address_v4(s), be16(p + 8));
        h.destination = ip::tcp::endpoint(ip::address_v4(d), be16(p + 10));
    } else {
        ip::address_v6::bytes_type s, d;
        std::memcpy(s.data(), p, 16);
        std::memcpy(d.data(), p + 16, 16);
        h.source = ip::tcp::endpoint(ip::address_v6(s), be16(p + 32));
        h.destination = ip::tcp::endpoint(ip::address_v6(d), be16(p + 34));
    }
    return h;
}

std::optional<Header> parse(Bytes data, ProxyProtocol allowed, std::size_t& used) {
    used = 0;
    if (data.size() < probe_size) return std::nullopt;
    if (detect(data.first(probe_size), allowed) == 1) {
        const std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
        const std::size_t n = v1_length(text);
        if (n == 0) return std::nullopt;
        auto h = parse_v1(text.substr(0, n));
        used = n;
        return h;
    }
    if (data.size() < v2_fixed) return std::nullopt;
    const std::size_t length = v2_length(data.first(v2_fixed));
    if (data.size() < v2_fixed + length) return std::nullopt;
    auto h = parse_v2(data.first(v2_fixed), data.subspan(v2_fixed, v2_keep(data.first(v2_fixed))));
    used = v2_fixed + length;
    return h;
}

}  // namespace coserve::detail::proxy
