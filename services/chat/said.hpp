// chat: what happens in a room, and how each kind of member is told.
//
// One event (a line, a join, a nick change...) is written once per format
// that has a recipient, never once per recipient: the hub renders it into a
// Message for line members (`<ann> hi`) and, if an IRC member is listening,
// one for IRC members (`:ann!ann@coserve PRIVMSG #lobby :hi`). Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace coserve::services::chat {

// How a member reads: the line protocol (nc, telnet) or IRC.
enum class Format : unsigned char { line, irc };

// How its lines travel: as they are (TCP, TLS), or each line a WebSocket
// frame, text (UTF-8, invalid bytes replaced) or binary (bytes as they are).
enum class Wire : unsigned char { raw, ws_text, ws_binary };

struct Said {
    enum class Kind : unsigned char { msg, me, notice, join, part, quit, nick, topic };
    Kind kind;
    std::string_view room;    // without '#'; unused for quit and nick (they span rooms)
    std::string_view nick;    // who; for nick, the new name
    std::string_view text;    // msg, me, notice: the text; part, quit: the line users' notice
                              // ("left", "left for #dev"); nick: the old name; topic: the topic
    std::string_view reason = {};  // part, quit: what IRC users see as the reason (empty: `text`)
};

// Lines one member said in a row (text and actions), gathered by its reader
// and told to its room in one broadcast (Hub::say_lines): each format's
// rendering holds them all, and each recipient's queue one entry for them.
// Its buffers are kept from batch to batch: gathering allocates nothing once
// they have grown. Not thread-safe.
class SaidLines {
public:
    static constexpr std::size_t max_text = 4096;  // bytes of text in one batch (a longer line goes alone)
    explicit SaidLines(std::size_t max_lines) : max_lines_(max_lines) {}
    bool empty() const noexcept { return lines_.empty(); }
    std::size_t size() const noexcept { return lines_.size(); }
    bool full() const noexcept { return lines_.size() >= max_lines_; }
    // False if `text` must wait for the next batch (this one has no room for it).
    bool fits(std::string_view text) const noexcept { return lines_.empty() || text_.size() + text.size() <= max_text; }
    void add(Said::Kind kind, std::string_view text) {  // kind: msg or me
        lines_.push_back({kind, text_.size(), text.size()});
        text_.append(text);
    }
    // Line i, said by `nick` in `room`.
    Said at(std::size_t i, std::string_view room, std::string_view nick) const noexcept {
        const Line& l = lines_[i];
        return Said{l.kind, room, nick, std::string_view(text_).substr(l.begin, l.size)};
    }
    void clear() noexcept {
        lines_.clear();
        text_.clear();
    }

private:
    struct Line {
        Said::Kind kind;
        std::size_t begin, size;  // in text_
    };
    std::size_t max_lines_;
    std::vector<Line> lines_;
    std::string text_;
};

// Appends the event as one member of `format` reads it, its CRLF included
// (IRC: as many lines as the text needs, each within 512 bytes). `host` is
// the host part of IRC prefixes (irc_server_name).
void render(std::string& out, const Said& s, Format format, std::string_view host);

}  // namespace coserve::services::chat
