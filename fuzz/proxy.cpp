// The PROXY protocol header (v1 and v2). A header parse() accepts depends
// only on its own bytes: the same bytes alone give the same header, one byte
// fewer asks for more, and a v1 header printed back parses to itself.
#include "check.hpp"

#include "proxy_header.hpp"

#include <coserve/log.hpp>

#include <cstdint>
#include <string>

namespace proxy = coserve::detail::proxy;

namespace {
std::optional<proxy::Header> attempt(proxy::Bytes data, coserve::ProxyProtocol allowed, std::size_t& used) {
    try {
        return proxy::parse(data, allowed, used);
    } catch (const proxy::Error&) {
        return std::nullopt;
    }
}

bool same(const proxy::Header& a, const proxy::Header& b) {
    return a.version == b.version && a.local == b.local && a.source == b.source && a.destination == b.destination;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const auto allowed = static_cast<coserve::ProxyProtocol>(1 + data[0] % 3);
    const proxy::Bytes bytes(data + 1, size - 1);
    std::size_t used = 0;
    const auto h = attempt(bytes, allowed, used);
    if (!h) return 0;
    FUZZ_CHECK(used >= proxy::probe_size && used <= bytes.size());
    FUZZ_CHECK(h->version == 1 || h->version == 2);
    FUZZ_CHECK(h->version != 1 || used <= proxy::v1_max);
    std::size_t again = 0;
    const auto alone = proxy::parse(bytes.first(used), allowed, again);  // must not throw
    FUZZ_CHECK(alone && again == used && same(*alone, *h));
    std::size_t shorter = 0;
    FUZZ_CHECK(!proxy::parse(bytes.first(used - 1), allowed, shorter));
    if (h->version == 1 && !h->local) {
        const bool v6 = h->source.address().is_v6();
        FUZZ_CHECK(h->destination.address().is_v6() == v6);
        const std::string line = std::string("PROXY ") + (v6 ? "TCP6 " : "TCP4 ") + h->source.address().to_string() +
                                 " " + h->destination.address().to_string() + " " + std::to_string(h->source.port()) +
                                 " " + std::to_string(h->destination.port()) + "\r\n";
        const auto printed = proxy::parse_v1(line);
        FUZZ_CHECK(same(printed, *h));
    }
    return 0;
}
