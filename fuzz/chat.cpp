// chat: every line parses to one command whose parts are pieces of the line,
// names are valid exactly when they are 1-32 of [A-Za-z0-9_-], and their keys
// ignore case. The same bytes as a record from Redis (another daemon's
// event): a record that parses has valid names and no line break, and
// writes back to the same bytes.
#include "check.hpp"

#include "protocols.hpp"

#include <cctype>
#include <cstdint>

namespace {

bool within(std::string_view part, std::string_view line) {
    return part.empty() || (part.data() >= line.data() && part.data() + part.size() <= line.data() + line.size());
}

bool name_rule(std::string_view s) {
    if (s.empty() || s.size() > 32) return false;
    for (unsigned char c : s)
        if (!std::isalnum(c) && c != '_' && c != '-') return false;
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace coserve::services;
    const std::string_view line(reinterpret_cast<const char*>(data), size);
    const ChatCommand c = parse_chat_line(line);
    FUZZ_CHECK(within(c.arg, line) && within(c.text, line));
    if (c.kind == ChatCommand::Kind::text) FUZZ_CHECK(!line.empty());
    if (!line.starts_with('/')) FUZZ_CHECK(c.kind == ChatCommand::Kind::text || c.kind == ChatCommand::Kind::empty);
    FUZZ_CHECK(valid_chat_name(line) == name_rule(line));
    if (valid_chat_name(line)) {
        std::string upper(line);
        for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        FUZZ_CHECK(chat_key(line) == chat_key(upper));
    }
    if (const auto e = parse_chat_event(line)) {
        FUZZ_CHECK(valid_chat_name(e->room) && valid_chat_name(e->nick));
        FUZZ_CHECK(e->text.find_first_of("\r\n") == std::string_view::npos);
        FUZZ_CHECK(chat_event_record(e->daemon, e->kind, e->room, e->nick, e->text) == line);
    }
    return 0;
}
