#include "hub.hpp"

#include <algorithm>

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

void Hub::remove(Member& m, std::string_view notice, FlushList& flush) {
    std::lock_guard lock(mutex_);
    if (mirror_) mirror_->unplaced(m.nick);  // before the leave is heard
    leave_room_locked(m, notice, flush);
    if (nicks_.erase(chat_key(m.nick)) && mirror_) mirror_->name_released(m.nick);
    clients_ = nicks_.size();
}

void Hub::say(Member& m, bool action, std::string_view text, FlushList& flush) {
    std::lock_guard lock(mutex_);
    if (!m.room) return;
    const MessageRef line = action ? out_.make({"* ", m.nick, " ", text}) : out_.make({"<", m.nick, "> ", text});
    ++messages_;
    broadcast_locked(*m.room, line, &m, flush);
    remember_locked(*m.room, line);
    if (mirror_) {
        mirror_->remember(m.room->name, line);
        mirror_->event(action ? "me" : "msg", m.room->name, m.nick, text);
    }
}

bool Hub::private_message(Member& from, std::string_view to, std::string_view text, FlushList& flush) {
    std::lock_guard lock(mutex_);
    auto it = nicks_.find(chat_key(to));
    if (it == nicks_.end()) return false;
    out_.enqueue(*it->second, out_.make({"<", from.nick, "> (private) ", text}), flush);
    return true;
}

std::string Hub::nick_error(const Member& m, std::string_view name) {
    if (!valid_chat_name(name)) return "* error: invalid nickname (1-32 of A-Z a-z 0-9 _ -)";
    std::lock_guard lock(mutex_);
    auto it = nicks_.find(chat_key(name));
    if (it != nicks_.end() && it->second != &m) return "* error: nickname " + std::string(name) + " is taken";
    return {};
}

std::string Hub::join_error(const Member& m, std::string_view room) {
    if (!valid_chat_name(room)) return "* error: invalid room name (1-32 of A-Z a-z 0-9 _ -)";
    std::lock_guard lock(mutex_);
    if (m.room && chat_key(room) == chat_key(m.room->name)) return "* error: you are already in #" + m.room->name;
    return {};
}

bool Hub::rename(Member& m, const std::string& name, FlushList& flush) {
    std::lock_guard lock(mutex_);
    auto it = nicks_.find(chat_key(name));
    if ((it != nicks_.end() && it->second != &m) || !m.room) return false;
    const std::string old = m.nick;
    nicks_.erase(chat_key(old));
    m.nick = name;
    nicks_.emplace(chat_key(name), &m);
    if (mirror_) {
        if (chat_key(old) != chat_key(name)) {
            mirror_->name_released(old);
            mirror_->name_taken(name);
        }
        mirror_->unplaced(old);
        mirror_->placed(name, m.room->name);
    }
    out_.reply(m, {"* you are now known as ", m.nick}, flush);
    broadcast_locked(*m.room, out_.make({"* ", old, " is now known as ", m.nick}), &m, flush);
    if (mirror_) mirror_->event("nick", m.room->name, m.nick, old);
    return true;
}

bool Hub::move(const std::shared_ptr<Member>& m, const std::string& room, const std::vector<std::string>* history,
               FlushList& flush) {
    std::lock_guard lock(mutex_);
    if (!m->room || chat_key(room) == chat_key(m->room->name)) return false;
    if (mirror_) mirror_->placed(m->nick, room);  // before the leave is heard
    leave_room_locked(*m, "left for #" + room, flush);
    enter_locked(m, room_locked(room), false, history, flush);
    return true;
}

void Hub::tell_members(Member& m, ChatCommand::Kind kind, const Others* others, FlushList& flush) {
    std::lock_guard lock(mutex_);
    if (!m.room) return;
    std::vector<std::string> names;
    RoomCounts counts;
    for (auto& [key, room] : rooms_) counts[key] = {room->name, room->members.size()};
    for (auto& member : m.room->members) names.push_back(member->nick);
    const auto here = chat_key(m.room->name);
    if (others)
        for (const auto& [nick, room] : *others) {
            const auto key = chat_key(room);
            auto& count = counts[key];
            if (count.first.empty()) count.first = room;
            ++count.second;
            if (key == here) names.push_back(nick);
        }
    if (kind == ChatCommand::Kind::who) out_.reply(m, {who_text(m.room->name, std::move(names))}, flush);
    else out_.reply(m, {rooms_text(counts)}, flush);
}

void Hub::deliver(const ChatEvent& e, FlushList& flush) {
    std::lock_guard lock(mutex_);
    auto it = rooms_.find(chat_key(e.room));
    if (it == rooms_.end()) return;  // nobody here is in that room
    Room& room = *it->second;
    MessageRef line;
    if (e.kind == "msg") line = out_.make({"<", e.nick, "> ", e.text});
    else if (e.kind == "me") line = out_.make({"* ", e.nick, " ", e.text});
    else if (e.kind == "join") line = out_.make({"* ", e.nick, " joined #", room.name});
    else if (e.kind == "leave") line = out_.make({"* ", e.nick, " ", e.text});
    else if (e.kind == "nick") line = out_.make({"* ", e.text, " is now known as ", e.nick});
    else return;
    broadcast_locked(room, line, nullptr, flush);
    if (e.kind == "msg" || e.kind == "me") remember_locked(room, line);
}

void Hub::deliver_private(std::string_view to_key, std::string_view from, std::string_view text, FlushList& flush) {
    std::lock_guard lock(mutex_);
    auto it = nicks_.find(std::string(to_key));
    if (it != nicks_.end()) out_.enqueue(*it->second, out_.make({"<", from, "> (private) ", text}), flush);
}

void Hub::link_state(bool up, FlushList& flush) {
    std::lock_guard lock(mutex_);
    if (up == !link_down_) return;
    link_down_ = !up;
    const MessageRef notice = out_.make({up ? link_restored_notice : link_down_notice});
    for (auto& [key, room] : rooms_)
        for (auto& member : room->members) out_.enqueue(*member, notice, flush);
}

Others Hub::placements() {
    std::lock_guard lock(mutex_);
    Others all;
    for (auto& [key, room] : rooms_)
        for (auto& member : room->members) all.emplace_back(member->nick, room->name);
    return all;
}

Room& Hub::room_locked(const std::string& name) {
    auto key = chat_key(name);
    auto it = rooms_.find(key);
    if (it == rooms_.end()) it = rooms_.emplace(key, std::make_unique<Room>(name, o_.history)).first;
    return *it->second;
}

void Hub::enter_locked(const std::shared_ptr<Member>& m, Room& room, bool welcome, const std::vector<std::string>* history,
                       FlushList& flush) {
    m->room = &room;
    m->index = room.members.size();
    room.members.push_back(m);
    if (welcome) out_.tell(*m, {"* welcome to #", room.name, ", you are ", m->nick, " (type /help for commands)"}, flush);
    else out_.reply(*m, {"* you joined #", room.name}, flush);
    if (history) {
        for (const auto& line : *history) out_.tell(*m, {line}, flush);
    } else if (o_.history > 0) {
        room.history.for_each([&](const MessageRef& line) { out_.enqueue(*m, line, flush); });
    }
    if (welcome && link_down_) out_.tell(*m, {link_down_notice}, flush);
    if (mirror_) mirror_->placed(m->nick, room.name);  // membership first: whoever hears the join and asks /who finds it
    broadcast_locked(room, out_.make({"* ", m->nick, " joined #", room.name}), m.get(), flush);
    if (mirror_) mirror_->event("join", room.name, m->nick, "");
}

void Hub::leave_room_locked(Member& m, std::string_view notice, FlushList& flush) {
    Room* room = m.room;
    if (!room) return;
    auto& list = room->members;
    std::swap(list[m.index], list.back());
    list[m.index]->index = m.index;
    list.pop_back();
    m.room = nullptr;
    if (!notice.empty()) {
        broadcast_locked(*room, out_.make({"* ", m.nick, " ", notice}), &m, flush);
        if (mirror_) mirror_->event("leave", room->name, m.nick, notice);
    }
    if (list.empty()) rooms_.erase(chat_key(room->name));
}

void Hub::broadcast_locked(Room& room, const MessageRef& line, const Member* except, FlushList& flush) {
    std::uint64_t n = 0;
    for (auto& member : room.members)
        if (member.get() != except) {
            out_.enqueue(*member, line, flush);
            ++n;
        }
    deliveries_.fetch_add(n, std::memory_order_relaxed);  // one atomic add per broadcast, not per recipient
}

void Hub::remember_locked(Room& room, const MessageRef& line) {
    if (o_.history == 0) return;
    if (room.history.full()) room.history.pop();
    room.history.push(line);
}

}  // namespace coserve::services::chat
