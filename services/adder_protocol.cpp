// adder: the exact sum of a line of decimal numbers (Boost.Multiprecision),
// without sockets, for unit tests and fuzzing.
#include "protocols.hpp"

#include <boost/multiprecision/cpp_int.hpp>

#include <optional>
#include <vector>

namespace coserve::services {

namespace {

using boost::multiprecision::cpp_int;

bool is_separator(char c) {
    return c == ',' || c == '+' || c == ' ' || c == '\t';
}

std::string quote_token(std::string_view token) {
    constexpr std::size_t shown = 40;
    std::string out;
    out.reserve(shown + 5);
    out.push_back('"');
    out.append(token.substr(0, shown));
    if (token.size() > shown) out.append("...");
    out.push_back('"');
    return out;
}

struct Term {
    std::string_view digits;  // integer and fraction digits, without the point
    std::size_t scale;        // digits after the point
    std::size_t length;       // digits that count against max_digits: the whole part's without leading zeros, and all after the point
    bool negative;
};

// A number is an optional '-', digits, and an optional '.' with more digits
// (at least one digit in all): 7, -7, 1.5, .5, 5.
std::optional<Term> parse_term(std::string_view token, std::string& digits) {
    Term t{};
    t.negative = token.starts_with('-');
    if (t.negative) token.remove_prefix(1);
    const auto point = token.find('.');
    std::string_view whole = token.substr(0, point);
    std::string_view frac = point == std::string_view::npos ? std::string_view() : token.substr(point + 1);
    if (whole.size() + frac.size() == 0) return std::nullopt;
    for (std::string_view part : {whole, frac})
        for (char c : part)
            if (c < '0' || c > '9') return std::nullopt;
    digits.assign(whole);
    digits.append(frac);
    // No leading zeros: cpp_int reads "025" as octal.
    const auto first = digits.find_first_not_of('0');
    digits.erase(0, first == std::string::npos ? digits.size() - 1 : first);
    t.scale = frac.size();
    const auto significant = whole.find_first_not_of('0');
    t.length = (significant == std::string_view::npos ? 0 : whole.size() - significant) + frac.size();
    return t;
}

// Decimal digits to a number, 18 at a time. (Not cpp_int's string
// constructor: at -O2, GCC 12 reports a false -Warray-bounds inside it.)
cpp_int from_decimal(std::string_view digits) {
    cpp_int value = 0;
    std::size_t piece = digits.size() % 18 == 0 ? 18 : digits.size() % 18;
    for (std::size_t i = 0; i < digits.size(); i += piece, piece = 18) {
        std::uint64_t chunk = 0, scale = 1;
        for (char c : digits.substr(i, piece)) {
            chunk = chunk * 10 + static_cast<std::uint64_t>(c - '0');
            scale *= 10;
        }
        value *= scale;
        value += chunk;
    }
    return value;
}

}  // namespace

std::string adder_sum(std::string_view line, std::size_t max_terms, std::size_t max_digits) {
    std::vector<std::string_view> tokens;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && is_separator(line[i])) ++i;
        const std::size_t start = i;
        while (i < line.size() && !is_separator(line[i])) ++i;
        if (i > start) {
            if (tokens.size() == max_terms) return "ERR too many terms (max " + std::to_string(max_terms) + ")";
            tokens.push_back(line.substr(start, i - start));
        }
    }
    if (tokens.empty()) return "ERR empty line";

    std::vector<Term> terms;
    std::vector<std::string> digit_strings(tokens.size());
    std::size_t scale = 0;
    for (std::size_t k = 0; k < tokens.size(); ++k) {
        auto t = parse_term(tokens[k], digit_strings[k]);
        if (!t) return "ERR not a number: " + quote_token(tokens[k]);
        // Fraction digits count too, zeros included: ".000...1" scales every other term by its length.
        if (t->length > max_digits)
            return "ERR number too long: " + quote_token(tokens[k]) + " (max " + std::to_string(max_digits) + " digits)";
        t->digits = digit_strings[k];
        scale = std::max(scale, t->scale);
        terms.push_back(*t);
    }
    cpp_int sum = 0;
    for (const auto& t : terms) {
        cpp_int value = from_decimal(t.digits);
        if (t.scale < scale) value *= boost::multiprecision::pow(cpp_int(10), static_cast<unsigned>(scale - t.scale));
        sum += t.negative ? -value : value;
    }
    const bool negative = sum < 0;
    std::string text = (negative ? cpp_int(-sum) : sum).str();
    if (scale > 0) {
        if (text.size() <= scale) text.insert(0, scale - text.size() + 1, '0');
        text.insert(text.size() - scale, ".");
        while (text.back() == '0') text.pop_back();
        if (text.back() == '.') text.pop_back();
    }
    if (negative && text != "0") text.insert(text.begin(), '-');
    return text;
}

}  // namespace coserve::services
