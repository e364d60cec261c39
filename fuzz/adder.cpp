// adder: any line gets "ERR ..." or a canonical decimal; small integer sums
// are checked against 128-bit arithmetic; limits bound the work.
#include "check.hpp"

#include "protocols.hpp"

#include <cstdint>
#include <string>

namespace {

bool canonical_decimal(std::string_view s) {
    if (s.starts_with('-')) s.remove_prefix(1);
    const auto point = s.find('.');
    const auto whole = s.substr(0, point);
    if (whole.empty() || (whole.size() > 1 && whole[0] == '0')) return false;
    for (char c : whole)
        if (c < '0' || c > '9') return false;
    if (point == std::string_view::npos) return true;
    const auto frac = s.substr(point + 1);
    if (frac.empty() || frac.back() == '0') return false;
    for (char c : frac)
        if (c < '0' || c > '9') return false;
    return true;
}

// The sum when every token is an integer of at most 18 digits, else false.
bool small_integer_sum(std::string_view line, __int128& sum) {
    sum = 0;
    std::size_t i = 0, terms = 0;
    auto sep = [](char c) { return c == ',' || c == '+' || c == ' ' || c == '\t'; };
    while (i < line.size()) {
        while (i < line.size() && sep(line[i])) ++i;
        std::size_t start = i;
        while (i < line.size() && !sep(line[i])) ++i;
        if (i == start) break;
        std::string_view tok = line.substr(start, i - start);
        const bool neg = tok.starts_with('-');
        if (neg) tok.remove_prefix(1);
        if (tok.empty() || tok.size() > 18) return false;
        long long v = 0;
        for (char c : tok) {
            if (c < '0' || c > '9') return false;
            v = v * 10 + (c - '0');
        }
        sum += neg ? -v : v;
        ++terms;
    }
    return terms > 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view line(reinterpret_cast<const char*>(data), size);
    const std::string out = coserve::services::adder_sum(line, 64, 200);
    if (out.starts_with("ERR ")) return 0;
    FUZZ_CHECK(canonical_decimal(out));
    FUZZ_CHECK(out.size() <= 2 * 200 + 4);  // max_digits bounds the answer
    __int128 expected = 0;
    if (small_integer_sum(line, expected)) {
        const bool neg = expected < 0;
        unsigned __int128 m = neg ? static_cast<unsigned __int128>(-expected) : static_cast<unsigned __int128>(expected);
        std::string text;
        do {
            text.insert(text.begin(), static_cast<char>('0' + static_cast<int>(m % 10)));
            m /= 10;
        } while (m != 0);
        if (neg) text.insert(text.begin(), '-');
        FUZZ_CHECK(out == text);
    }
    return 0;
}
