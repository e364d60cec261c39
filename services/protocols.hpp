// The protocol logic of the built-in services as plain functions and small
// classes (no sockets), so unit tests can check them byte for byte.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace coserve::services {

// adder: the exact sum of the numbers on a line (separated by commas,
// whitespace or '+'), in plain decimal without superfluous zeros, or an
// "ERR ..." message.
std::string adder_sum(std::string_view line, std::size_t max_terms, std::size_t max_digits);

// uppercase: Unicode full uppercase mapping (ICU) of a UTF-8 stream. A
// character split across two chunks is converted whole; bytes that are not
// valid UTF-8 pass through unchanged. Not thread-safe; one per stream.
class Utf8Upper {
public:
    // Appends the uppercase of `in` to `out`, keeping an incomplete trailing character for later.
    void transform(std::string_view in, std::string& out);
    // End of stream: flushes a held incomplete character unchanged.
    void finish(std::string& out);

private:
    std::string pending_;
    std::string joined_;
};

// daytime (RFC 867): the time as text, without the line ending.
enum class DaytimeFormat { ctime, rfc3339, rfc2822 };
std::string daytime_text(std::chrono::system_clock::time_point when, DaytimeFormat format, bool utc);

// time (RFC 868): seconds since 1900-01-01T00:00:00Z, modulo 2^32.
std::uint32_t rfc868_seconds(std::chrono::system_clock::time_point when);

// chargen (RFC 864): 95 lines of 72 characters plus CRLF, one full period of
// the pattern (line N starts at ring position N mod 95, line 0 with ' ').
std::string_view chargen_period();

}  // namespace coserve::services
