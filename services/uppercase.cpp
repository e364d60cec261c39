// uppercase: a stream transform to Unicode uppercase (ICU full case mapping,
// as Python's str.upper()); UDP answers each datagram with its uppercase.
#include "protocols.hpp"

#include <coserve/connection.hpp>
#include <coserve/lines.hpp>
#include <coserve/service.hpp>

#include <unicode/ucasemap.h>
#include <unicode/utf8.h>

#include <array>
#include <stdexcept>

namespace coserve::services {
namespace {

// Root-locale case mapping, shared read-only by every stream (thread-safe for const use).
const UCaseMap* case_map() {
    static const UCaseMap* map = [] {
        UErrorCode status = U_ZERO_ERROR;
        UCaseMap* m = ucasemap_open("", 0, &status);
        if (U_FAILURE(status)) throw std::runtime_error(std::string("ICU ucasemap_open: ") + u_errorName(status));
        return m;
    }();
    return map;
}

void append_upper(std::string_view valid, std::string& out) {
    if (valid.empty()) return;
    const std::size_t old = out.size();
    std::size_t room = valid.size() * 3 + 8;
    for (;;) {
        out.resize(old + room);
        UErrorCode status = U_ZERO_ERROR;
        int32_t n = ucasemap_utf8ToUpper(case_map(), out.data() + old, static_cast<int32_t>(room), valid.data(),
                                         static_cast<int32_t>(valid.size()), &status);
        if (status == U_BUFFER_OVERFLOW_ERROR) {
            room = static_cast<std::size_t>(n);
            continue;
        }
        if (U_FAILURE(status)) {  // cannot happen for valid UTF-8; never lose the bytes
            out.resize(old);
            out.append(valid);
            return;
        }
        out.resize(old + static_cast<std::size_t>(n));
        return;
    }
}

// True if `s` is the beginning of a well-formed UTF-8 sequence that needs more bytes.
bool incomplete_sequence(std::string_view s) {
    const auto lead = static_cast<unsigned char>(s[0]);
    std::size_t need = lead >= 0xC2 && lead <= 0xDF ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3 : lead >= 0xF0 && lead <= 0xF4 ? 4 : 0;
    if (need == 0 || s.size() >= need) return false;
    for (std::size_t i = 1; i < s.size(); ++i) {
        const auto b = static_cast<unsigned char>(s[i]);
        unsigned char lo = 0x80, hi = 0xBF;
        if (i == 1) {
            if (lead == 0xE0) lo = 0xA0;
            else if (lead == 0xED) hi = 0x9F;
            else if (lead == 0xF0) lo = 0x90;
            else if (lead == 0xF4) hi = 0x8F;
        }
        if (b < lo || b > hi) return false;
    }
    return true;
}

}  // namespace

void Utf8Upper::transform(std::string_view in, std::string& out) {
    std::string_view data = in;
    if (!pending_.empty()) {
        joined_.assign(pending_);
        joined_.append(in);
        pending_.clear();
        data = joined_;
    }
    const auto n = static_cast<int32_t>(data.size());
    int32_t i = 0, run = 0;
    while (i < n) {
        const int32_t start = i;
        UChar32 c;
        U8_NEXT(data.data(), i, n, c);
        if (c >= 0) continue;
        append_upper(data.substr(run, start - run), out);
        if (i == n && incomplete_sequence(data.substr(start))) {
            pending_.assign(data.substr(start));
            return;
        }
        out.append(data.substr(start, i - start));  // ill-formed: unchanged
        run = i;
    }
    append_upper(data.substr(run), out);
}

void Utf8Upper::finish(std::string& out) {
    out.append(pending_);
    pending_.clear();
}

namespace {

class Uppercase final : public Service {
public:
    explicit Uppercase(std::size_t max_line) : max_line_(max_line) {}

    boost::asio::awaitable<void> serve(Connection& c) override {
        std::array<char, 4096> in;
        std::string out;
        Utf8Upper upper;
        while (std::size_t n = co_await c.read_some(boost::asio::buffer(in))) {
            out.clear();
            upper.transform(std::string_view(in.data(), n), out);
            if (!out.empty()) co_await c.write(boost::asio::buffer(out));
        }
        out.clear();
        upper.finish(out);
        if (!out.empty()) co_await c.write(boost::asio::buffer(out));
        c.shutdown_send();
    }

    std::size_t datagram(std::span<const char> in, const boost::asio::ip::udp::endpoint&, std::span<char> out) override {
        return answer_datagram(in, out, max_line_, [](std::string_view line, std::string& reply) {
            Utf8Upper upper;
            upper.transform(line, reply);
            upper.finish(reply);
        });
    }

private:
    std::size_t max_line_;
};

}  // namespace

extern const ServiceType uppercase_service{
    .name = "uppercase", .create = [](Section&, const InstanceOptions& o) -> std::unique_ptr<Service> {
        case_map();  // fail at configuration time, not on the first client
        return std::make_unique<Uppercase>(o.max_line);
    }};

}  // namespace coserve::services
