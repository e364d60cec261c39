// chat over WebSocket (RFC 6455): the frames the server sends. Pure.
//
// Reading is Boost.Beast's (websocket_session.cpp); what the server sends is
// framed here, so that one event is framed once and its bytes shared by
// every WebSocket member, like every other message (Delivery::framed).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace coserve::services::chat::ws {

// Close codes (RFC 6455 7.4.1).
inline constexpr std::uint16_t normal = 1000, going_away = 1001, policy = 1008, try_later = 1013;

// Appends each line of `text` (lines end in LF or CRLF; the ending is not
// sent) as one unmasked, unfragmented frame: text frames carry valid UTF-8
// (an invalid byte becomes U+FFFD), binary frames the bytes as they are.
// Empty lines are skipped.
void append_frames(std::string& out, std::string_view text, bool binary);
// A close frame; the reason is cut to 123 bytes, between UTF-8 characters.
void append_close(std::string& out, std::uint16_t code, std::string_view reason);
// A ping frame with `payload` (at most 125 bytes).
void append_ping(std::string& out, std::string_view payload);

// `text` with each byte that is not part of a valid UTF-8 sequence replaced
// by U+FFFD (overlong forms, surrogates and code points past U+10FFFF are invalid).
void append_valid_utf8(std::string& out, std::string_view text);

}  // namespace coserve::services::chat::ws
