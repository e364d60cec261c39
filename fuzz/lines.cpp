// Line framing with telnet stripping: the lines (and too-long events) do not
// depend on how the bytes were split into reads; no line is longer than
// max_line or holds an LF.
#include "check.hpp"

#include <coserve/lines.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

std::vector<std::string> frame(std::size_t max_line, bool telnet, std::string_view data, const std::uint8_t* cuts,
                               std::size_t ncuts) {
    coserve::LineFramer f(max_line, telnet);
    std::vector<std::string> out;
    auto take = [&](const coserve::Line& l) {
        if (l.kind == coserve::Line::Kind::too_long) {
            out.push_back("<too long>");
            return;
        }
        FUZZ_CHECK(l.text.size() <= max_line);
        FUZZ_CHECK(l.text.find('\n') == std::string_view::npos);
        out.push_back(std::string(l.text) + "|" + std::string(l.ending));
    };
    std::size_t pos = 0, k = 0;
    while (pos < data.size()) {
        const auto space = f.prepare();
        FUZZ_CHECK(!space.empty());
        std::size_t n = std::min(space.size(), data.size() - pos);
        if (ncuts > 0) n = std::min<std::size_t>(n, 1 + cuts[k++ % ncuts] % 64);
        std::memcpy(space.data(), data.data() + pos, n);
        f.commit(n);
        pos += n;
        while (auto l = f.next()) take(*l);
    }
    if (f.has_partial())
        if (auto l = f.take_partial()) take(*l);
    return out;
}

}  // namespace

// Input: max_line (1 byte), telnet flag (1 byte), number of cut bytes (1 byte), cuts, data.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 3) return 0;
    const std::size_t max_line = 1 + data[0] % 200;
    const bool telnet = data[1] & 1;
    const std::size_t ncuts = std::min<std::size_t>(data[2] % 16, size - 3);
    const std::uint8_t* cuts = data + 3;
    const std::string_view bytes(reinterpret_cast<const char*>(data) + 3 + ncuts, size - 3 - ncuts);
    const auto whole = frame(max_line, telnet, bytes, nullptr, 0);
    const auto split = frame(max_line, telnet, bytes, cuts, ncuts);
    FUZZ_CHECK(whole == split);
    return 0;
}
