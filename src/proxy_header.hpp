// Internal: the PROXY protocol header (HAProxy's doc/proxy-protocol.txt), v1
// (text) and v2 (binary), parsed from bytes already read. Pure functions, no
// sockets: the session reads the header in the steps below (proxy_session.cpp)
// and the fuzzer drives parse() directly.
#pragma once

#include <coserve/config.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <cstddef>
#include <optional>
#include <span>
#include <stdexcept>
#include <string_view>

namespace coserve::detail::proxy {

using Bytes = std::span<const unsigned char>;

constexpr std::size_t probe_size = 12;     // read first: the v2 signature, or "PROXY " and the start of a v1 line
constexpr std::size_t v1_max = 107;        // a v1 line, CRLF included
constexpr std::size_t v2_fixed = 16;       // signature, version/command, family, length
constexpr std::size_t v2_address_max = 216;  // the largest address block (AF_UNIX); TLVs after it are skipped

// A header that is not what it must be: what() says what, in a few words.
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Header {
    int version = 0;
    // True for v2 LOCAL (a health check), v1 UNKNOWN and the v2 families a
    // TCP server cannot use (UNSPEC, UNIX, DGRAM): the connection stands for
    // the proxy itself, and source/destination are not set.
    bool local = true;
    boost::asio::ip::tcp::endpoint source, destination;
};

// Which version the first probe_size bytes begin; throws when neither, or
// one the setting does not take.
int detect(Bytes first, ProxyProtocol allowed);

// v1: the length of the line (through its LF) when `data` (which begins with
// "PROXY ") holds all of it, 0 when more is needed; throws when v1_max
// bytes hold no line end.
std::size_t v1_length(std::string_view data);
Header parse_v1(std::string_view line);  // the whole line, CRLF included

// v2: from the fixed 16 bytes, how many follow (addresses and TLVs).
std::size_t v2_length(Bytes fixed);
// How many of those to keep for parse_v2: the address block, at most v2_address_max.
std::size_t v2_keep(Bytes fixed);
Header parse_v2(Bytes fixed, Bytes addresses);

// The whole header from the start of `data`: nullopt when more bytes are
// needed; `used` is its length. Throws Error as the steps above.
std::optional<Header> parse(Bytes data, ProxyProtocol allowed, std::size_t& used);

}  // namespace coserve::detail::proxy
