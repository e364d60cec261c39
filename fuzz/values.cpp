// Single config values: endpoints, endpoint lists, durations, rates, CIDRs.
// Each parser either returns or throws std::invalid_argument, and what it
// returns prints back to text that parses to the same value.
#include "check.hpp"

#include <coserve/config.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace {
// Only the first parse, of the fuzzed text, may refuse it: an exception from
// a re-parse of what a parser returned is a bug, and ends the run.
template <class Parse>
auto first_parse(Parse parse) -> std::optional<decltype(parse())> {
    try {
        return parse();
    } catch (const std::invalid_argument&) {
        return std::nullopt;
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 5) {
    case 0:
        if (const auto e = first_parse([&] { return coserve::parse_endpoint(text); }))
            FUZZ_CHECK(coserve::parse_endpoint(e->to_string()) == *e);
        break;
    case 1:
        if (const auto list = first_parse([&] { return coserve::parse_endpoint_list(text); })) {
            FUZZ_CHECK(!list->empty() || text.find_first_not_of(" \t\r\n\f\v") == std::string_view::npos);  // "tcp =": none
            std::string joined;
            for (const auto& e : *list) joined += (joined.empty() ? "" : ",") + e.to_string();
            FUZZ_CHECK(coserve::parse_endpoint_list(joined) == *list);
        }
        break;
    case 2:
        if (const auto d = first_parse([&] { return coserve::parse_duration(text); })) {
            FUZZ_CHECK(d->count() >= 0);
            FUZZ_CHECK(coserve::parse_duration(coserve::format_duration(*d)) == *d);
        }
        break;
    case 3:
        if (const auto r = first_parse([&] { return coserve::parse_rate(text); })) {
            FUZZ_CHECK(r->per_second >= 0 && r->burst >= 0);
            FUZZ_CHECK(!r->limited() || r->burst >= 1);
        }
        break;
    case 4:
        if (const auto c = first_parse([&] { return coserve::parse_cidr(text); })) {
            FUZZ_CHECK(c->contains(c->network));
            const auto again = coserve::parse_cidr(c->to_string());
            FUZZ_CHECK(again.network == c->network && again.prefix == c->prefix);
        }
        break;
    }
    return 0;
}
