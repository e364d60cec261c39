// Single config values: endpoints, endpoint lists, durations, rates, CIDRs.
// Each parser either returns or throws std::invalid_argument, and what it
// returns prints back to text that parses to the same value.
#include "check.hpp"

#include <coserve/config.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        switch (data[0] % 5) {
        case 0: {
            const auto e = coserve::parse_endpoint(text);
            FUZZ_CHECK(coserve::parse_endpoint(e.to_string()) == e);
            break;
        }
        case 1: {
            const auto list = coserve::parse_endpoint_list(text);
            FUZZ_CHECK(!list.empty() || text.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos);  // "tcp =": none
            std::string joined;
            for (const auto& e : list) joined += (joined.empty() ? "" : ",") + e.to_string();
            FUZZ_CHECK(coserve::parse_endpoint_list(joined) == list);
            break;
        }
        case 2: {
            const auto d = coserve::parse_duration(text);
            FUZZ_CHECK(d.count() >= 0);
            FUZZ_CHECK(coserve::parse_duration(coserve::format_duration(d)) == d);
            break;
        }
        case 3: {
            const auto r = coserve::parse_rate(text);
            FUZZ_CHECK(r.per_second >= 0 && r.burst >= 0);
            FUZZ_CHECK(!r.limited() || r.burst >= 1);
            break;
        }
        case 4: {
            const auto c = coserve::parse_cidr(text);
            FUZZ_CHECK(c.contains(c.network));
            const auto again = coserve::parse_cidr(c.to_string());
            FUZZ_CHECK(again.network == c.network && again.prefix == c.prefix);
            break;
        }
        }
    } catch (const std::invalid_argument&) {
    }
    return 0;
}
