// The protocol logic of the built-in services as plain functions and small
// classes (no sockets), so unit tests can check them byte for byte.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <optional>
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

namespace coserve::services {

// chat: one input line as a command.
struct ChatCommand {
    enum class Kind { text, empty, nick, who, me, join, rooms, msg, topic, quit, help, unknown };
    Kind kind;
    std::string_view arg;   // nick/join: the name; msg: the recipient; unknown: the command word
    std::string_view text;  // text: the line to send (one '/' removed from "//..."); me/msg/topic/quit: the rest
};
ChatCommand parse_chat_line(std::string_view line);
// Nicknames and room names: 1-32 of A-Z a-z 0-9 _ -.
bool valid_chat_name(std::string_view name);
// The case-insensitive key of a nickname or room name.
std::string chat_key(std::string_view name);

// chat over Redis: one room event as published to the other daemons,
// "1 DAEMON KIND ROOM NICK TEXT" (version 1; TEXT may be empty, the space
// before it is always there). KIND: msg, me, notice (an IRC NOTICE), join,
// leave (TEXT: the notice, e.g. "left for #x"), nick (NICK: the new name,
// TEXT: the old), topic (TEXT: the topic) or priv (a private message to the
// user of the channel it came on; ROOM is the sender's, "-" for none; an
// action is sent as CTCP ACTION).
struct ChatEvent {
    std::string_view daemon, kind, room, nick, text;
};
std::string chat_event_record(std::string_view daemon, std::string_view kind, std::string_view room,
                              std::string_view nick, std::string_view text);
// nullopt for another version, an unknown kind, invalid names or a CR/LF.
std::optional<ChatEvent> parse_chat_event(std::string_view record);

}  // namespace coserve::services

namespace coserve::services {

// files: one request line. Words are separated by blanks; a line with the
// wrong number of words for its command is `bad`.
struct FilesRequest {
    enum class Kind { bad, list, get, size, sha256, put, quit };
    Kind kind = Kind::bad;
    std::string_view path;    // list: "." when omitted
    std::string_view number;  // get: the offset ("0" when omitted); put: the size; unparsed
};
FilesRequest parse_files_request(std::string_view line);
// A whole decimal std::uint64_t, nothing else.
bool files_parse_u64(std::string_view s, std::uint64_t& out);
// PUT's path as the directory to resolve and the name to create in it; false
// for absolute paths, a trailing '/', NUL bytes, or a last component . or ..
bool files_split_upload_path(std::string_view path, std::string_view& parent, std::string_view& name);
// Opens `path` beneath the directory `base`: never above it, whatever "..",
// symlinks or magic links say (openat2 RESOLVE_BENEATH; without openat2,
// component by component refusing every symlink). -1 with errno (EXDEV or
// ELOOP when it would escape).
int files_open_beneath(int base, std::string_view path, int flags);
// Resolve component by component even where openat2 exists. For tests.
void files_force_fallback(bool on);

}  // namespace coserve::services
