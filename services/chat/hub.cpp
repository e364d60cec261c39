#include "hub.hpp"

#include "irc.hpp"

#include <algorithm>
#include <chrono>

namespace coserve::services::chat {
namespace {

// Guest numbers are unique in the process, across chat instances.
std::atomic<std::uint64_t> next_guest{0};

// Rooms by chat_key: display name and members.
using RoomCounts = std::map<std::string, std::pair<std::string, std::size_t>>;

// "* N rooms: #a (2), #b (1)"
std::string rooms_text(const RoomCounts& rooms) {
    std::string text = "* " + std::to_string(rooms.size()) + (rooms.size() == 1 ? " room: " : " rooms: ");
    bool first = true;
    for (const auto& [key, room] : rooms) {
        text.append(first ? "#" : ", #").append(room.first).append(" (").append(std::to_string(room.second)).append(")");
        first = false;
    }
    return text;
}

}  // namespace

std::string who_text(std::string_view room, std::vector<std::string> names) {
    std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
        auto ka = chat_key(a), kb = chat_key(b);
        return ka != kb ? ka < kb : a < b;
    });
    std::string text = "* " + std::to_string(names.size()) + " in #" + std::string(room) + ": ";
    for (std::size_t i = 0; i < names.size(); ++i) text.append(i ? ", " : "").append(names[i]);
    return text;
}

std::string_view room_argument(std::string_view arg) {
    if (arg.starts_with('#')) arg.remove_prefix(1);
    return arg;
}

bool Hub::admit(const std::shared_ptr<Member>& m, const std::string& guest, const std::vector<std::string>* history,
                FlushList& flush) {
    std::lock_guard lock(mutex_);
    if (nicks_.size() >= o_.max_clients) return false;
    if (!guest.empty() && !nicks_.contains(chat_key(guest))) {
        m->nick = guest;
    } else {
        do m->nick = "guest" + std::to_string(++next_guest);
        while (nicks_.contains(chat_key(m->nick)));
    }
    nicks_.emplace(chat_key(m->nick), m.get());
    clients_ = nicks_.size();
    if (mirror_) mirror_->name_taken(m->nick);
    enter_locked(m, room_locked(o_.room), true, history, flush);
    return true;
}

Hub::Admission Hub::admit_named(const std::shared_ptr<Member>& m, const std::string& nick) {
    std::lock_guard lock(mutex_);
    if (nicks_.size() >= o_.max_clients) return Admission::full;
    if (nicks_.contains(chat_key(nick))) return Admission::taken;
    m->nick = nick;
    nicks_.emplace(chat_key(nick), m.get());
    clients_ = nicks_.size();
    if (mirror_) mirror_->name_taken(nick);
    return Admission::ok;
}

void Hub::remove(Member& m, std::string_view notice, FlushList& flush, std::string_view reason) {
    std::lock_guard lock(mutex_);
    if (!nicks_.contains(chat_key(m.nick)) || nicks_.at(chat_key(m.nick)) != &m) return;  // never admitted, or gone
    if (!m.seats.empty()) {
        if (mirror_) mirror_->placed(m.nick, "");  // before the leave is heard
        const Said said{Said::Kind::quit, {}, m.nick, notice, reason};
        const Said* batched = &said;  // one room: the quit goes into its batch
        if (m.seats.size() > 1) {     // several: each neighbour told once, now
            Rendered r{said, {}, {}};
            tell_neighbours_locked(m, r, false, flush);
            batched = nullptr;
        }
        while (!m.seats.empty()) {
            Room& room = *m.seats.back().room;
            if (mirror_) mirror_->event("leave", room.name, m.nick, notice);
            leave_room_locked(m, room, batched, flush);
        }
    }
    if (nicks_.erase(chat_key(m.nick)) && mirror_) mirror_->name_released(m.nick);
    clients_ = nicks_.size();
}

void Hub::say(Member& m, bool action, std::string_view text, FlushList& flush) {
    std::lock_guard lock(mutex_);
    Room* room = m.room();
    if (!room) return;
    const Said said{action ? Said::Kind::me : Said::Kind::msg, room->name, m.nick, text};
    say_locked(m, *room, 1, [&](std::size_t) { return said; }, flush);
}

void Hub::say_lines(Member& m, const SaidLines& lines, FlushList& flush) {
    std::lock_guard lock(mutex_);
    Room* room = m.room();
    if (!room || lines.empty()) return;
    say_locked(m, *room, lines.size(), [&](std::size_t i) { return lines.at(i, room->name, m.nick); }, flush);
}

Hub::Sent Hub::say_in(Member& m, std::string_view name, Said::Kind kind, std::string_view text, FlushList& flush) {
    std::lock_guard lock(mutex_);
    Room* room = find_room_locked(name);
    if (!room) return Sent::no_such_room;
    if (!seat_locked(m, *room)) return Sent::not_in_room;
    const Said said{kind, room->name, m.nick, text};
    say_locked(m, *room, 1, [&](std::size_t) { return said; }, flush);
    return Sent::ok;
}

template <class ByFormat>
void Hub::broadcast_locked(Room& room, ByFormat&& message, std::size_t lines, const Member* except, FlushList& flush) {
    settle_locked(room, flush);
    std::uint64_t n = 0;
    for (auto& member : room.members)
        if (member.get() != except) {
            out_.enqueue(*member, message(member->format), flush);
            ++n;
        }
    deliveries_.fetch_add(n * lines, std::memory_order_relaxed);  // one atomic add per broadcast, not per recipient
}

template <class SaidAt>
void Hub::say_locked(Member& m, Room& room, std::size_t n, SaidAt&& said, FlushList& flush) {
    MessageRef by_format[2];  // line, IRC: rendered on first need
    auto message = [&](Format f) -> const MessageRef& {
        MessageRef& text = by_format[f == Format::irc ? 1 : 0];
        if (!text) {
            text = out_.compose([&](std::string& out) {
                for (std::size_t i = 0; i < n; ++i) render(out, said(i), f, o_.host);
            });
            text->lines = static_cast<std::uint32_t>(n);
        }
        return text;
    };
    messages_.fetch_add(n, std::memory_order_relaxed);
    broadcast_locked(room, message, n, &m, flush);
    // History holds single lines: of a batch, only the lines it keeps (all of
    // them when the cluster is told) are rendered again on their own.
    const std::size_t first = mirror_ ? 0 : n - std::min(n, o_.history);
    for (std::size_t i = first; i < n; ++i) {
        const Said s = said(i);
        const std::string_view event = s.kind == Said::Kind::me ? "me" : s.kind == Said::Kind::notice ? "notice" : "msg";
        if (s.kind != Said::Kind::notice) {  // notices are not kept for newcomers
            const MessageRef line = n == 1 ? message(Format::line)
                                           : out_.compose([&](std::string& out) { render(out, s, Format::line, o_.host); });
            remember_locked(room, line);
            if (mirror_) mirror_->remember(room.name, line);
        }
        if (mirror_) mirror_->event(event, room.name, m.nick, s.text);
    }
}

namespace {

// The rooms `m` is in, each after `prefix`, separated by spaces (hub mutex held).
std::string room_names(const Member& m, std::string_view prefix) {
    std::string names;
    for (const auto& seat : m.seats) names.append(names.empty() ? "" : " ").append(prefix).append(seat.room->name);
    return names;
}

// A private message as its recipient reads it.
void render_private(std::string& out, Format format, std::string_view host, std::string_view from, std::string_view to,
                    Said::Kind kind, std::string_view text) {
    if (format == Format::irc) {
        const auto command = kind == Said::Kind::notice ? "NOTICE" : "PRIVMSG";
        return irc::append_text(out, irc::prefix(from, host), command, to, text, kind == Said::Kind::me);
    }
    if (kind == Said::Kind::me) out.append("* ").append(from).append(" (private) ");
    else if (kind == Said::Kind::notice) out.append("-").append(from).append("- (private) ");
    else out.append("<").append(from).append("> (private) ");
    out.append(text).append("\r\n");
}

}  // namespace

std::optional<std::string> Hub::private_message(Member& from, std::string_view to, Said::Kind kind, std::string_view text,
                                                FlushList& flush) {
    std::lock_guard lock(mutex_);
    auto it = nicks_.find(chat_key(to));
    if (it == nicks_.end()) return std::nullopt;
    Member& target = *it->second;
    out_.enqueue(target, out_.compose([&](std::string& out) {
        render_private(out, target.format, o_.host, from.nick, target.nick, kind, text);
    }), flush);
    return target.away;
}

std::string Hub::nick_error(const Member& m, std::string_view name) {
    if (!valid_chat_name(name)) return "* error: invalid nickname (1-32 of A-Z a-z 0-9 _ -)";
    if (!name_free(m, name)) return "* error: nickname " + std::string(name) + " is taken";
    return {};
}

bool Hub::name_free(const Member& m, std::string_view name) {
    std::lock_guard lock(mutex_);
    auto it = nicks_.find(chat_key(name));
    return it == nicks_.end() || it->second == &m;
}

std::string Hub::join_error(const Member& m, std::string_view room) {
    if (!valid_chat_name(room)) return "* error: invalid room name (1-32 of A-Z a-z 0-9 _ -)";
    std::lock_guard lock(mutex_);
    if (m.room() && chat_key(room) == chat_key(m.room()->name)) return "* error: you are already in #" + m.room()->name;
    return {};
}

bool Hub::rename(Member& m, const std::string& name, FlushList& flush) {
    std::lock_guard lock(mutex_);
    auto it = nicks_.find(chat_key(name));
    if (it != nicks_.end() && it->second != &m) return false;
    if (m.format == Format::line && !m.room()) return false;
    const std::string old = m.nick;
    nicks_.erase(chat_key(old));
    m.nick = name;
    nicks_.emplace(chat_key(name), &m);
    if (mirror_) {
        if (chat_key(old) != chat_key(name)) {
            mirror_->name_released(old);
            mirror_->name_taken(name);
        }
        mirror_->placed(old, "");
        placed_locked(m);
    }
    if (m.format == Format::line) out_.reply(m, {"* you are now known as ", m.nick}, flush);
    const Said said{Said::Kind::nick, {}, m.nick, old};
    Rendered r{said, {}, {}};
    tell_neighbours_locked(m, r, m.format == Format::irc, flush);
    if (mirror_)
        for (const auto& seat : m.seats) mirror_->event("nick", seat.room->name, m.nick, old);
    return true;
}

bool Hub::move(const std::shared_ptr<Member>& m, const std::string& room, const std::vector<std::string>* history,
               FlushList& flush) {
    std::lock_guard lock(mutex_);
    Room* from = m->room();
    if (!from || chat_key(room) == chat_key(from->name)) return false;
    if (mirror_) mirror_->placed(m->nick, room);  // before the leave is heard
    const std::string notice = "left for #" + room;
    const std::string from_name = from->name;  // the room goes with its last member
    const Said said{Said::Kind::part, from_name, m->nick, notice};
    leave_room_locked(*m, *from, &said, flush);
    if (mirror_) mirror_->event("leave", from_name, m->nick, notice);
    enter_locked(m, room_locked(room), false, history, flush);
    return true;
}

Hub::Joined Hub::join(const std::shared_ptr<Member>& m, const std::string& name, const std::vector<std::string>* history,
                      const Others* others, FlushList& flush) {
    std::lock_guard lock(mutex_);
    if (Room* existing = find_room_locked(name); existing && seat_locked(*m, *existing)) return Joined::already;
    if (m->seats.size() >= o_.max_channels) return Joined::too_many;
    Room& room = room_locked(name);
    m->seats.push_back({&room, room.members.size()});
    room.members.push_back(m);
    placed_locked(*m);  // membership first: whoever hears the join and asks finds it
    irc_welcome_locked(*m, room, history, others, flush);
    announce_locked(room, m.get(), Said{Said::Kind::join, room.name, m->nick, {}}, flush);
    if (mirror_) mirror_->event("join", room.name, m->nick, "");
    return Joined::ok;
}

Hub::Parted Hub::part(Member& m, std::string_view name, std::string_view reason, FlushList& flush) {
    std::lock_guard lock(mutex_);
    Room* room = find_room_locked(name);
    if (!room) return Parted::no_such_room;
    if (!seat_locked(m, *room)) return Parted::not_in_room;
    const std::string notice = reason.empty() ? std::string("left") : "left (" + std::string(reason) + ")";
    const Said said{Said::Kind::part, room->name, m.nick, notice, reason};
    Rendered r{said, {}, {}};
    broadcast_locked(*room, r, nullptr, flush);  // the member too: an IRC client waits for its own PART
    if (mirror_) mirror_->event("leave", room->name, m.nick, notice);
    leave_room_locked(m, *room, nullptr, flush);
    placed_locked(m);
    return Parted::ok;
}

void Hub::part_all(Member& m, FlushList& flush) {
    std::vector<std::string> names;
    {
        std::lock_guard lock(mutex_);
        for (const auto& seat : m.seats) names.push_back(seat.room->name);
    }
    for (const auto& name : names) part(m, name, {}, flush);
}

Hub::Parted Hub::set_topic(Member& m, std::string_view name, std::string_view topic, FlushList& flush) {
    std::lock_guard lock(mutex_);
    Room* room = find_room_locked(name);
    if (!room) return Parted::no_such_room;
    if (!seat_locked(m, *room)) return Parted::not_in_room;
    set_topic_locked(*room, topic, m.nick);
    const Said said{Said::Kind::topic, room->name, m.nick, room->topic};
    Rendered r{said, {}, {}};
    broadcast_locked(*room, r, nullptr, flush);  // the setter too: IRC clients wait for their TOPIC
    if (mirror_) mirror_->event("topic", room->name, m.nick, room->topic);
    return Parted::ok;
}

void Hub::line_topic(Member& m, std::string_view topic, FlushList& flush) {
    std::string room;
    {
        std::lock_guard lock(mutex_);
        Room* here = m.room();
        if (!here) return;
        if (topic.empty()) {
            if (here->topic.empty()) return out_.reply(m, {"* #", here->name, " has no topic"}, flush);
            return out_.reply(m, {"* topic of #", here->name, ": ", here->topic, " (set by ", here->topic_by, ")"}, flush);
        }
        room = here->name;
    }
    set_topic(m, room, topic, flush);
}

void Hub::set_away(Member& m, std::string away) {
    std::lock_guard lock(mutex_);
    m.away = std::move(away);
}

void Hub::tell_members(Member& m, ChatCommand::Kind kind, const Others* others, FlushList& flush) {
    std::lock_guard lock(mutex_);
    Room* here_room = m.room();
    if (!here_room) return;
    std::vector<std::string> names;
    RoomCounts counts;
    for (auto& [key, room] : rooms_) counts[key] = {room->name, room->members.size()};
    for (auto& member : here_room->members) names.push_back(member->nick);
    const auto here = chat_key(here_room->name);
    if (others)
        for (const auto& [nick, room] : *others) {
            const auto key = chat_key(room);
            auto& count = counts[key];
            if (count.first.empty()) count.first = room;
            ++count.second;
            if (key == here) names.push_back(nick);
        }
    if (kind == ChatCommand::Kind::who) out_.reply(m, {who_text(here_room->name, std::move(names))}, flush);
    else out_.reply(m, {rooms_text(counts)}, flush);
}

std::optional<RoomView> Hub::room_view(std::string_view name, const Others* others) {
    std::lock_guard lock(mutex_);
    RoomView v;
    if (Room* room = find_room_locked(name)) {
        v.name = room->name;
        v.topic = room->topic;
        v.topic_by = room->topic_by;
        v.topic_at = room->topic_at;
        for (const auto& member : room->members) {
            v.nicks.push_back(member->nick);
            v.away.push_back(member->away);
        }
    }
    if (others)
        for (const auto& [nick, room] : *others)
            if (chat_key(room) == chat_key(name)) {
                if (v.name.empty()) v.name = room;
                v.nicks.push_back(nick);
                v.away.emplace_back();
            }
    if (v.name.empty()) return std::nullopt;
    return v;
}

std::vector<RoomView> Hub::room_list(const Others* others) {
    std::lock_guard lock(mutex_);
    std::map<std::string, RoomView> all;
    for (const auto& [key, room] : rooms_) {
        auto& v = all[key];
        v.name = room->name;
        v.topic = room->topic;
        for (const auto& member : room->members) v.nicks.push_back(member->nick);
    }
    if (others)
        for (const auto& [nick, room] : *others) {
            auto& v = all[chat_key(room)];
            if (v.name.empty()) v.name = room;
            v.nicks.push_back(nick);
        }
    std::vector<RoomView> list;
    for (auto& [key, v] : all) list.push_back(std::move(v));
    return list;
}

std::optional<UserView> Hub::user_view(std::string_view nick) {
    std::lock_guard lock(mutex_);
    auto it = nicks_.find(chat_key(nick));
    if (it == nicks_.end()) return std::nullopt;
    const Member& m = *it->second;
    UserView v{m.nick, m.away, m.format, {}};
    for (const auto& seat : m.seats) v.rooms.push_back(seat.room->name);
    return v;
}

std::string Hub::channels_of(const Member& m) {
    std::lock_guard lock(mutex_);
    return room_names(m, "#");
}

void Hub::deliver(const ChatEvent& e, FlushList& flush) {
    std::lock_guard lock(mutex_);
    auto it = rooms_.find(chat_key(e.room));
    if (it == rooms_.end()) return;  // nobody here is in that room
    Room& room = *it->second;
    using K = Said::Kind;
    std::optional<Said> said;
    if (e.kind == "msg") said = Said{K::msg, room.name, e.nick, e.text};
    else if (e.kind == "me") said = Said{K::me, room.name, e.nick, e.text};
    else if (e.kind == "notice") said = Said{K::notice, room.name, e.nick, e.text};
    else if (e.kind == "join") return announce_locked(room, nullptr, Said{K::join, room.name, e.nick, {}}, flush);
    else if (e.kind == "leave") return announce_locked(room, nullptr, Said{K::part, room.name, e.nick, e.text}, flush);
    else if (e.kind == "nick") said = Said{K::nick, room.name, e.nick, e.text};
    else if (e.kind == "topic") {
        set_topic_locked(room, e.text, e.nick);
        said = Said{K::topic, room.name, e.nick, room.topic};
    } else {
        return;
    }
    Rendered r{*said, {}, {}};
    broadcast_locked(room, r, nullptr, flush);
    if (e.kind == "msg" || e.kind == "me") remember_locked(room, rendered(r, Format::line));
}

void Hub::deliver_private(std::string_view to_key, std::string_view from, std::string_view text, FlushList& flush) {
    std::lock_guard lock(mutex_);
    auto it = nicks_.find(std::string(to_key));
    if (it == nicks_.end()) return;
    Member& target = *it->second;
    const auto action = irc::ctcp_action(text);
    out_.enqueue(target, out_.compose([&](std::string& out) {
        render_private(out, target.format, o_.host, from, target.nick, action ? Said::Kind::me : Said::Kind::msg,
                       action ? *action : text);
    }), flush);
}

void Hub::link_state(bool up, FlushList& flush) {
    std::lock_guard lock(mutex_);
    if (up == !link_down_) return;
    link_down_ = !up;
    while (!batched_.empty()) settle_locked(*batched_.back(), flush);
    const std::string_view text = up ? link_restored_notice : link_down_notice;
    MessageRef line, irc_line;
    for (auto& [key, room] : rooms_)
        for (auto& member : room->members) {
            if (member->room() != room.get()) continue;  // told once, in its first room
            auto& m = member->format == Format::irc ? irc_line : line;
            if (!m)
                m = member->format == Format::irc
                        ? out_.compose([&](std::string& out) { irc::append_text(out, ":" + o_.host, "NOTICE", "*", text); })
                        : out_.make({text});
            out_.enqueue(*member, m, flush);
        }
}

Others Hub::placements() {
    std::lock_guard lock(mutex_);
    Others all;
    for (auto& [nick, member] : nicks_)
        if (!member->seats.empty()) {
            all.emplace_back(member->nick, room_names(*member, ""));
        }
    return all;
}

const MessageRef& Hub::rendered(Rendered& r, Format f) {
    MessageRef& m = f == Format::irc ? r.irc : r.line;
    if (!m) m = out_.compose([&](std::string& out) { render(out, r.said, f, o_.host); });
    return m;
}

Room& Hub::room_locked(const std::string& name) {
    auto key = chat_key(name);
    auto it = rooms_.find(key);
    if (it == rooms_.end()) it = rooms_.emplace(key, std::make_unique<Room>(name, o_.history)).first;
    return *it->second;
}

Room* Hub::find_room_locked(std::string_view name) {
    auto it = rooms_.find(chat_key(name));
    return it == rooms_.end() ? nullptr : it->second.get();
}

Seat* Hub::seat_locked(Member& m, const Room& room) {
    for (auto& seat : m.seats)
        if (seat.room == &room) return &seat;
    return nullptr;
}

void Hub::enter_locked(const std::shared_ptr<Member>& m, Room& room, bool welcome, const std::vector<std::string>* history,
                       FlushList& flush) {
    m->seats.assign(1, Seat{&room, room.members.size()});
    room.members.push_back(m);
    if (welcome) out_.tell(*m, {"* welcome to #", room.name, ", you are ", m->nick, " (type /help for commands)"}, flush);
    else out_.reply(*m, {"* you joined #", room.name}, flush);
    if (!room.topic.empty()) out_.tell(*m, {"* topic of #", room.name, ": ", room.topic, " (set by ", room.topic_by, ")"}, flush);
    if (history) {
        for (const auto& line : *history) out_.tell(*m, {line}, flush);
    } else if (o_.history > 0) {
        room.history.for_each([&](const MessageRef& line) { out_.enqueue(*m, line, flush); });
    }
    if (welcome && link_down_) out_.tell(*m, {link_down_notice}, flush);
    if (mirror_) mirror_->placed(m->nick, room.name);  // membership first: whoever hears the join and asks /who finds it
    announce_locked(room, m.get(), Said{Said::Kind::join, room.name, m->nick, {}}, flush);
    if (mirror_) mirror_->event("join", room.name, m->nick, "");
}

// An IRC client's JOIN, as the Modern IRC documents order it: its own JOIN,
// the topic (332, 333; nothing when there is none), the names (353, 366).
// Then the room's recent lines as NOTICEs from the server to the channel,
// between two notices that say so: clients show them apart from what
// members say live (irssi: "-coserve:#lobby- <ann> hello").
void Hub::irc_welcome_locked(Member& m, Room& room, const std::vector<std::string>* history, const Others* others,
                             FlushList& flush) {
    const std::string channel = irc::channel(room.name);
    out_.enqueue(m, out_.compose([&](std::string& out) {
        render(out, Said{Said::Kind::join, room.name, m.nick, {}}, Format::irc, o_.host);
        if (!room.topic.empty()) {
            out.append(irc::numeric(o_.host, "332", m.nick, {channel, room.topic}));
            out.append(irc::numeric(o_.host, "333", m.nick, {channel, room.topic_by, std::to_string(room.topic_at)}, false));
        }
        std::vector<std::string> names;
        for (const auto& member : room.members) names.push_back(member->nick);
        if (others)
            for (const auto& [nick, where] : *others)
                if (chat_key(where) == chat_key(room.name)) names.push_back(nick);
        irc::append_list(out, ":" + o_.host + " 353 " + m.nick + " = " + channel + " :", names);
        out.append(irc::numeric(o_.host, "366", m.nick, {channel, "End of /NAMES list"}));
        std::vector<std::string_view> lines;
        if (history) {
            for (const auto& line : *history) lines.push_back(line);
        } else if (o_.history > 0) {
            room.history.for_each([&](const MessageRef& line) {
                std::string_view text = line->text;
                if (text.ends_with("\r\n")) text.remove_suffix(2);
                lines.push_back(text);
            });
        }
        if (lines.empty()) return;
        const std::string from = ":" + o_.host;
        irc::append_text(out, from, "NOTICE", channel,
                         "* history of " + channel + ", the last " + std::to_string(lines.size()) +
                             (lines.size() == 1 ? " line:" : " lines:"));
        for (auto line : lines) irc::append_text(out, from, "NOTICE", channel, line);
        irc::append_text(out, from, "NOTICE", channel, "* end of history");
    }), flush);
}

void Hub::leave_room_locked(Member& m, Room& room, const Said* said, FlushList& flush) {
    Seat* seat = seat_locked(m, room);
    if (!seat) return;
    if (!room.notices.empty()) {  // what was waiting for it here: after its own join, if it is there
        std::size_t from = 0;
        for (std::size_t k = 0; k < room.notices.size(); ++k)
            if (room.notices[k].joiner == &m) {
                room.notices[k].joiner = nullptr;
                from = k + 1;
            }
        if (from < room.notices.size()) {
            out_.enqueue(m, batch_text(room, from, m.format), flush);
            deliveries_.fetch_add(room.notices.size() - from, std::memory_order_relaxed);
        }
    }
    const std::size_t index = seat->index;
    m.seats.erase(m.seats.begin() + (seat - m.seats.data()));
    auto& list = room.members;
    std::swap(list[index], list.back());
    if (Seat* moved = seat_locked(*list[index], room)) moved->index = index;
    list.pop_back();
    if (list.empty()) {
        std::erase(batched_, &room);
        rooms_.erase(chat_key(room.name));
    } else if (said) {
        announce_locked(room, nullptr, *said, flush);
    }
}

void Hub::broadcast_locked(Room& room, Rendered& r, const Member* except, FlushList& flush) {
    broadcast_locked(room, [&](Format f) -> const MessageRef& { return rendered(r, f); }, 1, except, flush);
}

void Hub::tell_neighbours_locked(Member& m, Rendered& r, bool self, FlushList& flush) {
    for (const auto& seat : m.seats) settle_locked(*seat.room, flush);
    const std::uint64_t mark = ++mark_;
    m.mark = mark;
    if (self) out_.enqueue(m, rendered(r, m.format), flush);
    std::uint64_t n = 0;
    for (const auto& seat : m.seats)
        for (auto& member : seat.room->members)
            if (member->mark != mark) {
                member->mark = mark;
                out_.enqueue(*member, rendered(r, member->format), flush);
                ++n;
            }
    deliveries_.fetch_add(n, std::memory_order_relaxed);
}

void Hub::announce_locked(Room& room, Member* joiner, const Said& said, FlushList& flush) {
    if (!start_flusher_) {
        Rendered r{said, {}, {}};
        return broadcast_locked(room, r, joiner, flush);
    }
    if (room.notices.empty()) batched_.push_back(&room);
    room.notices.push_back({said.kind, std::string(said.nick), std::string(said.text), std::string(said.reason), joiner});
    // A bound on the batch: the notices a late joiner or a leaver does hear are copied for it.
    constexpr std::size_t max_batch = 256;
    if (room.notices.size() >= max_batch) return settle_locked(room, flush);
    if (!flusher_running_) {
        flusher_running_ = true;
        start_flusher_();
    }
}

Said Hub::said_of(const Room& room, const Room::Notice& n) {
    return Said{n.kind, room.name, n.nick, n.text, n.reason};
}

MessageRef Hub::batch_text(const Room& room, std::size_t from, Format f) {
    return out_.compose([&](std::string& out) {
        for (std::size_t k = from; k < room.notices.size(); ++k) render(out, said_of(room, room.notices[k]), f, o_.host);
    });
}

void Hub::settle_locked(Room& room, FlushList& flush) {
    if (room.notices.empty()) return;
    const std::size_t count = room.notices.size();
    struct Batch {
        MessageRef all;               // every notice, rendered once per format
        std::vector<std::size_t> at;  // where notice k starts in all->text
    };
    Batch batches[2];
    auto batch = [&](Format f) -> Batch& {
        Batch& b = batches[f == Format::irc ? 1 : 0];
        if (!b.all)
            b.all = out_.compose([&](std::string& out) {
                for (const auto& n : room.notices) {
                    b.at.push_back(out.size());
                    render(out, said_of(room, n), f, o_.host);
                }
            });
        return b;
    };
    // A member that joined in this batch hears the notices after its own join.
    for (std::size_t k = 0; k < count; ++k)
        if (Member* joiner = room.notices[k].joiner) joiner->settle_from = k + 1;
    std::uint64_t delivered = 0;
    for (auto& member : room.members) {
        const std::size_t from = std::exchange(member->settle_from, 0);
        if (from >= count) continue;
        Batch& b = batch(member->format);
        out_.enqueue(*member, from == 0 ? b.all : out_.make({std::string_view(b.all->text).substr(b.at[from])}, ""), flush);
        delivered += count - from;
    }
    deliveries_.fetch_add(delivered, std::memory_order_relaxed);
    room.notices.clear();
    std::erase(batched_, &room);
}

bool Hub::settle_notices(FlushList& flush) {
    std::lock_guard lock(mutex_);
    if (batched_.empty()) {
        flusher_running_ = false;
        return false;
    }
    while (!batched_.empty()) settle_locked(*batched_.back(), flush);
    return true;
}

void Hub::flusher_ended() {
    std::lock_guard lock(mutex_);
    flusher_running_ = false;
}

void Hub::remember_locked(Room& room, const MessageRef& line) {
    if (o_.history == 0) return;
    if (room.history.full()) room.history.pop();
    room.history.push(line);
}

void Hub::set_topic_locked(Room& room, std::string_view topic, std::string_view by) {
    room.topic = irc::clean(irc::fit(topic, max_topic));
    room.topic_by = by;
    room.topic_at =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void Hub::placed_locked(const Member& m) {
    if (!mirror_) return;
    mirror_->placed(m.nick, room_names(m, ""));
}

}  // namespace coserve::services::chat
