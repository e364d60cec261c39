// Unit tests of the pure parts: line framing, telnet filtering, and each
// service's protocol logic, without sockets.
#include <catch2/catch.hpp>

#include <coserve/lines.hpp>

#include "../services/protocols.hpp"

#include <cstring>

using namespace coserve;
using namespace coserve::services;

namespace {

// Feeds `chunks` to a framer and collects what it reports: lines as
// text + "|" + ending, too-long events as "<too long>".
std::vector<std::string> frame(LineFramer& f, std::initializer_list<std::string_view> chunks) {
    std::vector<std::string> out;
    for (auto chunk : chunks) {
        while (!chunk.empty()) {
            auto space = f.prepare();
            auto n = std::min(space.size(), chunk.size());
            std::memcpy(space.data(), chunk.data(), n);
            f.commit(n);
            chunk.remove_prefix(n);
            while (auto l = f.next())
                out.push_back(l->kind == Line::Kind::too_long ? "<too long>" : std::string(l->text) + "|" + std::string(l->ending));
        }
    }
    return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("framer: LF and CRLF endings are reported") {
    LineFramer f(100);
    CHECK(frame(f, {"one\ntwo\r\nthree"}) == V{"one|\n", "two|\r\n"});
    CHECK(f.has_partial());
    CHECK(frame(f, {" more\n"}) == V{"three more|\n"});
    CHECK(frame(f, {"a\rb\n"}) == V{"a\rb|\n"});  // a CR not before LF is data
    CHECK(frame(f, {"\n", "\r\n"}) == V{"|\n", "|\r\n"});
}

TEST_CASE("framer: a line of exactly max_line bytes is accepted and one more is too long") {
    LineFramer f(5);
    CHECK(frame(f, {"12345\n"}) == V{"12345|\n"});
    CHECK(frame(f, {"12345\r\n"}) == V{"12345|\r\n"});
    CHECK(frame(f, {"12345", "\r", "\n"}) == V{"12345|\r\n"});
    CHECK(frame(f, {"123456\nok\n"}) == V{"<too long>", "ok|\n"});
    // Reported as soon as the line passes max_line, before its LF arrives.
    CHECK(frame(f, {"1234567"}) == V{"<too long>"});
    CHECK_FALSE(f.has_partial());
    CHECK(frame(f, {"89\n", "next\n"}) == V{"next|\n"});
}

TEST_CASE("framer: an overlong line is discarded without being buffered") {
    LineFramer f(100);
    std::string chunk(65536, 'x');
    std::size_t fed = 0;
    int too_long = 0;
    // 10 MiB without LF: the framer's buffer stays at its initial size.
    while (fed < (10u << 20)) {
        auto space = f.prepare();
        CHECK(space.size() <= 4096);
        auto n = std::min(space.size(), chunk.size());
        std::memcpy(space.data(), chunk.data(), n);
        f.commit(n);
        fed += n;
        while (auto l = f.next()) too_long += l->kind == Line::Kind::too_long;
    }
    CHECK(too_long == 1);
    CHECK(frame(f, {"tail\nafter\n"}) == V{"after|\n"});
}

TEST_CASE("framer: a large max_line grows the buffer only as far as needed") {
    LineFramer f(100000);
    std::string line(99999, 'y');
    auto got = frame(f, {line, "z\n"});
    REQUIRE(got.size() == 1);
    CHECK(got[0] == line + "z|\n");
}

TEST_CASE("framer: partial lines") {
    LineFramer f(10);
    frame(f, {"50,40"});
    auto p = f.take_partial();
    REQUIRE(p);
    CHECK(p->text == "50,40");
    CHECK(p->ending.empty());
    CHECK_FALSE(f.take_partial());
    frame(f, {"abc\r"});
    CHECK(f.take_partial()->text == "abc");
}

TEST_CASE("telnet IAC sequences are removed, also across chunks") {
    LineFramer f(100);
    const char iac = static_cast<char>(255);
    std::string will_echo = {iac, static_cast<char>(251), 1};
    std::string sub = {iac, static_cast<char>(250), 24, 0, 'x', 't', 'e', 'r', 'm', iac, static_cast<char>(240)};
    std::string nop = {iac, static_cast<char>(241)};
    std::string escaped = {iac, iac};
    CHECK(frame(f, {will_echo + "he" + nop + "llo" + sub + "\r\n"}) == V{"hello|\r\n"});
    CHECK(frame(f, {std::string(1, iac), std::string(1, static_cast<char>(253)), "\x03" "ab\n"}) == V{"ab|\n"});
    CHECK(frame(f, {"a" + escaped + "b\n"}) == V{"a\xff" "b|\n"});
}

TEST_CASE("datagram lines") {
    auto l = datagram_line(std::span<const char>("50,40\r\n", 7));
    CHECK(l.text == "50,40");
    CHECK(l.ending == "\r\n");
    CHECK(datagram_line(std::span<const char>("x", 1)).ending.empty());
}

TEST_CASE("adder: exact sums") {
    auto sum = [](std::string_view s) { return adder_sum(s, 1000, 1000); };
    CHECK(sum("50,40") == "90");
    CHECK(sum("1 2 3") == "6");
    CHECK(sum("1.5 + 2.25") == "3.75");
    CHECK(sum("-7,3") == "-4");
    CHECK(sum("0.1,0.2") == "0.3");
    CHECK(sum("1.50+2.50") == "4");
    CHECK(sum("99999999999999999999,1") == "100000000000000000000");
    CHECK(sum("  ,+ 5 ,, +\t6") == "11");
    CHECK(sum("-0.5,0.5") == "0");
    CHECK(sum("-0.25") == "-0.25");
    CHECK(sum(".5,5.") == "5.5");
    CHECK(sum("007") == "7");
    CHECK(sum("0.001,-0.002") == "-0.001");
    std::string a(100, '9'), b = "1" + std::string(99, '0');
    CHECK(sum(a + "," + b) == "10" + std::string(99, '9'));
    CHECK(sum(b + "," + a) == "10" + std::string(99, '9'));
    CHECK(sum("-" + a + "," + b) == "-" + std::string(99, '9').replace(0, 1, "8") + "9");
    CHECK(sum(a + ",1") == "1" + std::string(100, '0'));
}

TEST_CASE("adder: errors") {
    CHECK(adder_sum("abc", 1000, 1000) == "ERR not a number: \"abc\"");
    CHECK(adder_sum("1,2x,3", 1000, 1000) == "ERR not a number: \"2x\"");
    CHECK(adder_sum("1-2", 1000, 1000) == "ERR not a number: \"1-2\"");
    CHECK(adder_sum("-", 1000, 1000) == "ERR not a number: \"-\"");
    CHECK(adder_sum("1.2.3", 1000, 1000) == "ERR not a number: \"1.2.3\"");
    CHECK(adder_sum("1e5", 1000, 1000) == "ERR not a number: \"1e5\"");
    CHECK(adder_sum("", 1000, 1000) == "ERR empty line");
    CHECK(adder_sum(" , + ", 1000, 1000) == "ERR empty line");
    CHECK(adder_sum("1 2 3 4", 3, 1000) == "ERR too many terms (max 3)");
    CHECK(adder_sum("123456", 10, 5) == "ERR number too long: \"123456\" (max 5 digits)");
    CHECK(adder_sum("000000012345", 10, 5) == "12345");  // leading zeros are free
    // Digits after the point count, zeros included: otherwise "0.000...1"
    // would make every other term a number of that many digits.
    CHECK(adder_sum("1.000001", 10, 5) == "ERR number too long: \"1.000001\" (max 5 digits)");
    CHECK(adder_sum("0.0001 1", 10, 5) == "1.0001");
    CHECK(adder_sum("1 ." + std::string(60000, '0') + "1", 64, 1000).starts_with("ERR number too long: \".000"));
    CHECK(adder_sum(std::string(50, 'q'), 10, 5) == "ERR not a number: \"" + std::string(40, 'q') + "...\"");
}

TEST_CASE("uppercase: Unicode full case mapping as Python's str.upper()") {
    auto upper = [](std::string_view s) {
        Utf8Upper u;
        std::string out;
        u.transform(s, out);
        u.finish(out);
        return out;
    };
    CHECK(upper("hello") == "HELLO");
    CHECK(upper("straße") == "STRASSE");
    CHECK(upper("café") == "CAFÉ");
    CHECK(upper("\xef\xac\x81") == "FI");  // U+FB01 LATIN SMALL LIGATURE FI
    CHECK(upper("αβγ ά") == "ΑΒΓ Ά");
    CHECK(upper("привет") == "ПРИВЕТ");
    CHECK(upper("\xce\x90") == "\xce\x99\xcc\x88\xcc\x81");  // U+0390 becomes three code points
    CHECK(upper("x\xff" "y\xc3(z") == "X\xff" "Y\xc3(Z");  // invalid bytes unchanged
    CHECK(upper("\xe2\x82") == "\xe2\x82");                 // truncated at the end: unchanged
}

TEST_CASE("uppercase: a character split across chunks is converted whole") {
    Utf8Upper u;
    std::string out;
    u.transform("stra\xc3", out);
    CHECK(out == "STRA");
    u.transform("\x9f" "e \xe2\x82", out);  // ß completed; € (e2 82 ac) started
    CHECK(out == "STRASSE ");
    u.transform("\xac!", out);
    CHECK(out == "STRASSE \xe2\x82\xac!");
    u.finish(out);
    CHECK(out == "STRASSE \xe2\x82\xac!");
}

TEST_CASE("daytime formats") {
    // 2026-11-21T22:46:47Z, a Saturday.
    const auto when = std::chrono::system_clock::from_time_t(1'795'301'207);
    CHECK(daytime_text(when, DaytimeFormat::ctime, true) == "Sat Nov 21 22:46:47 2026");
    CHECK(daytime_text(when, DaytimeFormat::rfc3339, true) == "2026-11-21T22:46:47Z");
    CHECK(daytime_text(when, DaytimeFormat::rfc2822, true) == "Sat, 21 Nov 2026 22:46:47 +0000");
    const auto first = std::chrono::system_clock::from_time_t(1'793'572'400);  // 2026-11-01T22:33:20Z
    CHECK(daytime_text(first, DaytimeFormat::ctime, true) == "Sun Nov  1 22:33:20 2026");
}

TEST_CASE("time: seconds since 1900") {
    CHECK(rfc868_seconds(std::chrono::system_clock::from_time_t(0)) == 2'208'988'800u);
    CHECK(rfc868_seconds(std::chrono::system_clock::from_time_t(1'795'301'207)) == 4'004'290'007u);
    // 2036-02-07T06:28:16Z wraps to 0, as RFC 868's 32 bits do.
    CHECK(rfc868_seconds(std::chrono::system_clock::from_time_t(2'085'978'496)) == 0u);
}

TEST_CASE("chargen: the RFC 864 pattern") {
    auto period = chargen_period();
    REQUIRE(period.size() == 95 * 74);
    CHECK(period.substr(0, 74) ==
          " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n");
    CHECK(period.substr(74, 74) ==
          "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n");
    // Line 94 starts with '~' and wraps to ' '.
    CHECK(period.substr(94 * 74, 3) == "~ !");
}

TEST_CASE("chat events between daemons: the record format") {
    const auto r = chat_event_record("d1-7", "msg", "Lobby", "alice", "hello  world ");
    CHECK(r == "1 d1-7 msg Lobby alice hello  world ");
    const auto e = parse_chat_event(r);
    REQUIRE(e.has_value());
    CHECK(e->daemon == "d1-7");
    CHECK(e->kind == "msg");
    CHECK(e->room == "Lobby");
    CHECK(e->nick == "alice");
    CHECK(e->text == "hello  world ");
    CHECK(parse_chat_event("1 d1 join lobby bob ").has_value());          // empty text
    CHECK(parse_chat_event("1 d1 nick lobby bob alice").has_value());
    CHECK_FALSE(parse_chat_event("1 d1 nick lobby bob not valid"));      // the old name must be a name
    CHECK_FALSE(parse_chat_event("2 d1 msg lobby bob hi"));              // another version
    CHECK_FALSE(parse_chat_event("1 d1 shout lobby bob hi"));            // an unknown kind
    CHECK_FALSE(parse_chat_event("1 d1 msg lob.by bob hi"));             // invalid room
    CHECK_FALSE(parse_chat_event("1 d1 msg lobby b@b hi"));              // invalid nick
    CHECK_FALSE(parse_chat_event("1 d1 msg lobby bob hi\r\n* fake"));    // a line break in the text
    CHECK_FALSE(parse_chat_event("1 d1 msg lobby bob"));                 // the space before the text is missing
    CHECK_FALSE(parse_chat_event(""));
}
