// The PROXY protocol (v1 and v2): the header parser, the config keys, and a
// server behind a "proxy" on 127.0.0.1 whose headers name other clients:
// ACLs, per-source limits, logs and metrics see the client; a source outside
// proxy_from, a missing, bad, oversized, truncated or slow header is refused.
#include <catch2/catch.hpp>

#include "support.hpp"

#include "../src/proxy_header.hpp"

#include <string>

using namespace testing;
namespace ip = boost::asio::ip;
namespace proxy = coserve::detail::proxy;
using coserve::ProxyProtocol;

namespace {

const std::string sig("\r\n\r\n\0\r\nQUIT\n", 12);

std::optional<proxy::Header> parse(std::string_view bytes, ProxyProtocol allowed, std::size_t& used) {
    return proxy::parse({reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()}, allowed, used);
}

proxy::Header parse_all(std::string_view bytes, ProxyProtocol allowed = ProxyProtocol::any) {
    std::size_t used = 0;
    auto h = parse(bytes, allowed, used);
    if (!h) throw std::runtime_error("incomplete");
    if (used != bytes.size()) throw std::runtime_error("used " + std::to_string(used));
    return *h;
}

std::string be16(unsigned v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)}; }

// A v2 PROXY header for TCP over IPv4, with `tlv` after the addresses.
std::string v2_tcp4(std::string_view src, unsigned sport, std::string_view dst, unsigned dport, std::string tlv = {}) {
    const auto s = ip::make_address_v4(std::string(src)).to_bytes(), d = ip::make_address_v4(std::string(dst)).to_bytes();
    std::string block(s.begin(), s.end());
    block.append(d.begin(), d.end());
    block += be16(sport) + be16(dport) + tlv;
    return sig + "\x21\x11" + be16(static_cast<unsigned>(block.size())) + block;
}

std::string v2_tcp6(std::string_view src, unsigned sport, std::string_view dst, unsigned dport) {
    const auto s = ip::make_address_v6(std::string(src)).to_bytes(), d = ip::make_address_v6(std::string(dst)).to_bytes();
    std::string block(s.begin(), s.end());
    block.append(d.begin(), d.end());
    block += be16(sport) + be16(dport);
    return sig + "\x21\x21" + be16(static_cast<unsigned>(block.size())) + block;
}

std::string echo_of(TcpClient& c, const std::string& data) {
    c.send(data);
    return c.recv_exact(data.size(), 3s);
}

// True when a client from `from` that sends `data` is closed without a byte back.
bool closed_after(const ip::tcp::endpoint& to, const ip::address& from, std::string_view data) {
    TcpClient c(to, from);
    c.send(data);
    return c.closed_within(3s);
}

std::string rejected(const char* reason) {
    return "coserve_connections_rejected_total{instance=\"echo\",service=\"echo\",reason=\"" + std::string(reason) + "\"}";
}

}  // namespace

TEST_CASE("PROXY v1 headers: TCP4, TCP6 and UNKNOWN") {
    auto h = parse_all("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n");
    CHECK(h.version == 1);
    CHECK_FALSE(h.local);
    CHECK(h.source == ip::tcp::endpoint(ip::make_address("192.0.2.1"), 56324));
    CHECK(h.destination == ip::tcp::endpoint(ip::make_address("198.51.100.2"), 443));
    h = parse_all("PROXY TCP6 2001:db8::1 ::1 0 65535\r\n");
    CHECK(h.source == ip::tcp::endpoint(ip::make_address("2001:db8::1"), 0));
    CHECK(h.destination.port() == 65535);
    CHECK(parse_all("PROXY UNKNOWN\r\n").local);
    CHECK(parse_all("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n").local);  // the rest is ignored
    // The longest possible line, 107 bytes, is taken.
    const std::string longest = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    REQUIRE(longest.size() == 104);
    CHECK_FALSE(parse_all(longest).local);
    // What follows the header is not the header's.
    std::size_t used = 0;
    CHECK(parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nhello", ProxyProtocol::v1, used));
    CHECK(used == 32);
    // Incomplete: more is needed, nothing is thrown.
    CHECK_FALSE(parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", ProxyProtocol::v1, used));
    CHECK_FALSE(parse("PROXY", ProxyProtocol::v1, used));
}

TEST_CASE("PROXY v1 headers that are refused") {
    const char* bad[] = {
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",               // no CR
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",                // a field missing
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",            // one too many
        "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",             // two spaces
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",          // port out of range
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",                  // IPv6 in TCP4
        "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",                  // IPv4 in TCP6
        "PROXY TCP6 fe80::1%lo ::1 1 2\r\n",               // a scope: no interface lookups
        "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
        "PROXY TCP4 localhost 5.6.7.8 1 2\r\n",            // names are never resolved
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n",
    };
    for (const char* line : bad) {
        INFO(line);
        CHECK_THROWS_AS(parse_all(line), proxy::Error);
    }
    std::size_t used = 0;
    const std::string no_end = "PROXY UNKNOWN " + std::string(100, 'x');  // 114 bytes, no line end
    CHECK_THROWS_WITH(parse(no_end, ProxyProtocol::any, used), Catch::Contains("107 bytes"));
    CHECK_THROWS_WITH(parse("GET / HTTP/1.1\r\n", ProxyProtocol::any, used), Catch::Contains("no PROXY protocol header"));
    CHECK_THROWS_WITH(parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", ProxyProtocol::v2, used), Catch::Contains("v1 header"));
}

TEST_CASE("PROXY v2 headers: TCP over IPv4 and IPv6, TLVs, LOCAL, and the fallbacks") {
    auto h = parse_all(v2_tcp4("192.0.2.1", 56324, "198.51.100.2", 443));
    CHECK(h.version == 2);
    CHECK(h.source == ip::tcp::endpoint(ip::make_address("192.0.2.1"), 56324));
    CHECK(h.destination == ip::tcp::endpoint(ip::make_address("198.51.100.2"), 443));
    h = parse_all(v2_tcp6("2001:db8::7", 1, "::1", 2));
    CHECK(h.source == ip::tcp::endpoint(ip::make_address("2001:db8::7"), 1));
    // TLVs (here PP2_TYPE_UNIQUE_ID and a NOOP) are skipped.
    h = parse_all(v2_tcp4("10.1.2.3", 9, "10.0.0.1", 7, "\x05" + be16(4) + "abcd" + "\x04" + be16(0)));
    CHECK(h.source.address() == ip::make_address("10.1.2.3"));
    CHECK(parse_all(sig + std::string("\x20\x00", 2) + be16(0)).local);           // LOCAL
    CHECK(parse_all(sig + "\x20\x11" + be16(12) + std::string(12, '\0')).local);  // LOCAL ignores the block
    CHECK(parse_all(sig + std::string("\x21\x00", 2) + be16(0)).local);           // UNSPEC
    CHECK(parse_all(sig + "\x21\x12" + be16(12) + std::string(12, '\0')).local);  // UDP over IPv4
    CHECK(parse_all(sig + "\x21\x31" + be16(216) + std::string(216, 'u')).local);  // UNIX stream
    std::size_t used = 0;
    const auto full = v2_tcp4("192.0.2.1", 1, "192.0.2.2", 2);
    for (std::size_t n = 0; n < full.size(); ++n) CHECK_FALSE(parse(full.substr(0, n), ProxyProtocol::v2, used));
    CHECK(parse(full + "data", ProxyProtocol::v2, used));
    CHECK(used == full.size());
}

TEST_CASE("PROXY v2 headers that are refused") {
    std::size_t used = 0;
    CHECK_THROWS_WITH(parse(sig + "\x11\x11" + be16(12) + std::string(12, '\0'), ProxyProtocol::any, used),
                      Catch::Contains("version"));
    CHECK_THROWS_WITH(parse(sig + "\x22\x11" + be16(12) + std::string(12, '\0'), ProxyProtocol::any, used),
                      Catch::Contains("command"));
    CHECK_THROWS_WITH(parse(sig + "\x21\x41" + be16(12) + std::string(12, '\0'), ProxyProtocol::any, used),
                      Catch::Contains("family"));
    CHECK_THROWS_WITH(parse(sig + "\x21\x13" + be16(12) + std::string(12, '\0'), ProxyProtocol::any, used),
                      Catch::Contains("family"));
    CHECK_THROWS_WITH(parse(sig + "\x21\x11" + be16(8) + std::string(8, '\0'), ProxyProtocol::any, used),
                      Catch::Contains("shorter"));
    CHECK_THROWS_WITH(parse(sig + "\x21\x21" + be16(12) + std::string(12, '\0'), ProxyProtocol::any, used),
                      Catch::Contains("shorter"));
    CHECK_THROWS_WITH(parse(v2_tcp4("1.2.3.4", 1, "5.6.7.8", 2), ProxyProtocol::v1, used), Catch::Contains("v2 header"));
}

TEST_CASE("proxy_protocol config keys") {
    auto c = coserve::load_config_text("[echo]\ntcp = 127.0.0.1:0\n");
    CHECK(c.instances[0].options.proxy_protocol == ProxyProtocol::off);
    CHECK(coserve::describe(c).find("proxy_protocol = off") != std::string::npos);
    c = coserve::load_config_text("[echo]\ntcp = 127.0.0.1:0\nproxy_protocol = v2\nproxy_from = 10.0.0.0/8, ::1\n");
    CHECK(c.instances[0].options.proxy_protocol == ProxyProtocol::v2);
    CHECK(c.instances[0].options.proxy_from.size() == 2);
    CHECK(c.instances[0].options.proxy_timeout == std::chrono::seconds(3));
    const auto shown = coserve::describe(c);
    CHECK(shown.find("proxy_protocol = v2") != std::string::npos);
    CHECK(shown.find("proxy_from = 10.0.0.0/8, ::1") != std::string::npos);
    CHECK_THROWS_WITH(coserve::load_config_text("[echo]\ntcp = 127.0.0.1:0\nproxy_protocol = v1\n", "p.ini"),
                      Catch::StartsWith("p.ini: [echo] proxy_from: is needed by proxy_protocol = v1"));
    CHECK_THROWS_WITH(coserve::load_config_text("[echo]\ntcp = 127.0.0.1:0\nproxy_from = 10.0.0.1\n", "p.ini"),
                      Catch::StartsWith("p.ini: [echo] proxy_from: is set, but proxy_protocol = off"));
    CHECK_THROWS_WITH(coserve::load_config_text("[echo]\ntcp = 127.0.0.1:0\nproxy_protocol = v3\n", "p.ini"),
                      Catch::StartsWith("p.ini: [echo] proxy_protocol: expected one of off, v1, v2, any"));
    CHECK_THROWS_WITH(coserve::load_config_text("[echo]\nudp = 127.0.0.1:0\nproxy_protocol = v1\nproxy_from = 127.0.0.1\n", "p.ini"),
                      Catch::StartsWith("p.ini: [echo] proxy_protocol: is for TCP and TLS listeners"));
}

TEST_CASE("behind a proxy, the header's client is what ACLs, limits and metrics see") {
    RunningServer rs("[metrics]\nhttp = 127.0.0.1:0\n"
                     "[echo]\ntcp = 127.0.0.1:0\nproxy_protocol = any\nproxy_from = 127.0.0.1\nproxy_timeout = 500ms\n"
                     "allow = 192.0.2.0/24, 127.0.0.1\nmax_per_source = 1\n");
    const auto to = rs.tcp("echo");
    const ip::address lo1 = ip::make_address("127.0.0.1"), lo2 = ip::make_address("127.0.0.2");

    // v1 and v2, each with data in the same segment: not one byte of it is lost to the header.
    TcpClient a(to, lo1);
    a.send("PROXY TCP4 192.0.2.10 127.0.0.1 40000 7\r\nfirst");
    CHECK(a.recv_exact(5, 3s) == "first");
    {
        TcpClient b(to, lo1);
        b.send(v2_tcp4("192.0.2.11", 40001, "127.0.0.1", 7, "\x04" + be16(3) + "xyz") + "second");
        CHECK(b.recv_exact(6, 3s) == "second");
        CHECK(echo_of(b, "more") == "more");
    }

    // max_per_source = 1 counts 192.0.2.10, not the proxy: a second from it is refused...
    CHECK(closed_after(to, lo1, "PROXY TCP4 192.0.2.10 127.0.0.1 40002 7\r\n"));
    // ...and an ACL refuses a client outside `allow` that the proxy brings.
    CHECK(closed_after(to, lo1, "PROXY TCP4 198.51.100.1 127.0.0.1 40003 7\r\n"));
    // LOCAL (a health check) stands for the proxy itself, which `allow` lists.
    TcpClient check(to, lo1);
    check.send(sig + std::string("\x20\x00", 2) + be16(0) + "ok");
    CHECK(check.recv_exact(2, 3s) == "ok");

    // A header sent slowly, a byte at a time, still counts if it is complete in time.
    TcpClient slow(to, lo1);
    const std::string line = "PROXY TCP6 2001:db8::5 ::1 1 7\r\n";
    for (char ch : line) {
        slow.send(std::string(1, ch));
        std::this_thread::sleep_for(5ms);
    }
    slow.send("x");
    // 2001:db8::5 is outside `allow`: the slow header was read to its end and judged.
    CHECK(slow.closed_within(3s));

    // No header, a truncated one, one too long, garbage: closed, and nothing is echoed.
    CHECK(closed_after(to, lo1, "hello there, no header\r\n"));
    CHECK(closed_after(to, lo1, "PROXY TCP4 192.0.2.12 "));  // truncated: after proxy_timeout
    CHECK(closed_after(to, lo1, "PROXY UNKNOWN " + std::string(200, 'x') + "\r\n"));  // oversized
    CHECK(closed_after(to, lo1, sig + std::string("\x21\x11", 2) + be16(12) + "abc"));  // a v2 block cut short

    // Spoofed: a header from outside proxy_from changes nothing; the connection is refused unread.
    CHECK(closed_after(to, lo2, "PROXY TCP4 192.0.2.13 127.0.0.1 40004 7\r\n"));

    const auto m = scrape_metrics(rs);
    CHECK(metric_value(m, rejected("proxy_header")) == 4);  // plain, truncated, oversized, v2_short
    CHECK(metric_value(m, rejected("proxy_from")) == 1);
    CHECK(metric_value(m, rejected("per_source")) == 1);
    CHECK(metric_value(m, rejected("acl")) == 2);  // stranger, slow
    CHECK(metric_value(m, "coserve_connections_total{instance=\"echo\",service=\"echo\"}") == 3);
    // 192.0.2.11 has gone, and its place under max_per_source with it.
    for (int i = 0; i < 50; ++i) {
        TcpClient back(to, lo1);
        back.send(v2_tcp4("192.0.2.11", 40005, "127.0.0.1", 7) + "back");
        std::string got;
        try {
            got = back.recv_exact(4, 3s);
        } catch (const std::exception&) {
        }
        if (got == "back") break;
        REQUIRE(i < 49);
        std::this_thread::sleep_for(20ms);
    }
    CHECK(echo_of(a, "still") == "still");
}

TEST_CASE("behind a proxy, a parked echo connection keeps its client's place under max_per_source") {
    RunningServer rs("[metrics]\nhttp = 127.0.0.1:0\n"
                     "[echo]\ntcp = 127.0.0.1:0\nproxy_protocol = v1\nproxy_from = 127.0.0.1\n"
                     "idle_timeout = 30s\nmax_per_source = 1\n");
    const auto to = rs.tcp("echo");
    const ip::address lo1 = ip::make_address("127.0.0.1");
    const std::string parked = "coserve_connections_parked{instance=\"echo\",service=\"echo\"}";
    TcpClient a(to, lo1);
    a.send("PROXY TCP4 192.0.2.20 127.0.0.1 40000 7\r\nfirst");
    CHECK(a.recv_exact(5, 3s) == "first");
    // Silent for a sweep period (1 s): parked, the header not read again when it wakes.
    CHECK(metric_value(scrape_until(rs, parked, 1), parked) == 1);
    // While parked, 192.0.2.20 still holds its one place: refused for it (not
    // closed by anything else: idle_timeout is far).
    CHECK(closed_after(to, lo1, "PROXY TCP4 192.0.2.20 127.0.0.1 40001 7\r\n"));
    CHECK(metric_value(scrape_metrics(rs), rejected("per_source")) == 1);
    CHECK(echo_of(a, "PROXY TCP4 this is data now") == "PROXY TCP4 this is data now");
}
