// chat: rooms, members, names and history, with no I/O.
//
// The hub decides who hears what and queues it in the members' outboxes
// (Delivery::enqueue, memory only); the senders flush. Each check a command
// makes (a valid and free nickname, a valid room to join) is written here
// once, for this daemon alone and for the cluster alike. What the cluster
// must mirror (names, membership, events) it is told through HubMirror, at
// the points where the order matters. Thread-safe: one mutex, taken by each
// public member function.
#pragma once

#include "outbox.hpp"

#include "../protocols.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace coserve::services::chat {

struct Room {
    Room(std::string n, std::size_t history_lines) : name(std::move(n)), history(std::max<std::size_t>(1, history_lines)) {}
    std::string name;
    std::vector<std::shared_ptr<Member>> members;
    Ring<MessageRef> history;
};

// Other daemons' members, as /who and /rooms count them: (nick, room).
using Others = std::vector<std::pair<std::string, std::string>>;

// Called with the hub's mutex held (chat/cluster.cpp implements it).
class HubMirror {
public:
    virtual ~HubMirror() = default;
    virtual void name_taken(std::string_view nick) = 0;     // a member has this name now
    virtual void name_released(std::string_view nick) = 0;  // ... no longer
    virtual void placed(std::string_view nick, std::string_view room) = 0;  // before the join is heard
    virtual void unplaced(std::string_view nick) = 0;                       // before the leave is heard
    // kind: msg, me, join, leave (text: the notice), nick (nick: the new name, text: the old).
    virtual void event(std::string_view kind, std::string_view room, std::string_view nick, std::string_view text) = 0;
    virtual void remember(std::string_view room, const MessageRef& line) = 0;  // a line for the room's history
};

struct HubOptions {
    std::string room = "lobby";  // where a newcomer starts
    std::size_t history = 20;    // lines a room keeps for newcomers
    std::size_t max_clients = 1000;
};

class Hub {
public:
    Hub(HubOptions o, Delivery& out) : o_(std::move(o)), out_(out) {}
    Hub(const Hub&) = delete;
    void set_mirror(HubMirror* mirror) { mirror_ = mirror; }  // before the first member

    // A newcomer: a name (`guest` if given and free here, else the process's
    // next guestN), the start room, the welcome, the room's history
    // (`history`, oldest first, or this daemon's when null). False when full.
    bool admit(const std::shared_ptr<Member>& m, const std::string& guest, const std::vector<std::string>* history,
               FlushList& flush);
    // Out of its room and of the names; the room hears `notice` ("left", ...).
    void remove(Member& m, std::string_view notice, FlushList& flush);
    // A line (or an action, "/me") of `m` to its room.
    void say(Member& m, bool action, std::string_view text, FlushList& flush);
    // A private message to a member of this daemon; false if there is none of that name.
    bool private_message(Member& from, std::string_view to, std::string_view text, FlushList& flush);

    // The checks: an error line to reply, or "" when the command may go on.
    std::string nick_error(const Member& m, std::string_view name);
    std::string join_error(const Member& m, std::string_view room);
    // Applied after the checks (and the cluster's answer): false if the
    // name was taken here meanwhile, or the member has left.
    bool rename(Member& m, const std::string& name, FlushList& flush);
    // False if `m` left or is in `room` already.
    bool move(const std::shared_ptr<Member>& m, const std::string& room, const std::vector<std::string>* history,
              FlushList& flush);
    // /who or /rooms: this daemon's members and `others` (null: none).
    void tell_members(Member& m, ChatCommand::Kind kind, const Others* others, FlushList& flush);

    // From the cluster: an event in a room, a private message for a member here.
    void deliver(const ChatEvent& e, FlushList& flush);
    void deliver_private(std::string_view to_key, std::string_view from, std::string_view text, FlushList& flush);
    // A notice to everyone; `down` also goes to each newcomer until `restored`.
    void link_state(bool up, FlushList& flush);
    // (nick, room) of every member here.
    Others placements();

    std::uint64_t clients() const noexcept { return clients_.load(std::memory_order_relaxed); }
    std::uint64_t messages() const noexcept { return messages_.load(std::memory_order_relaxed); }
    std::uint64_t deliveries() const noexcept { return deliveries_.load(std::memory_order_relaxed); }

    static constexpr std::string_view link_down_notice = "* notice: cluster link down, messages reach this server only";
    static constexpr std::string_view link_restored_notice = "* notice: cluster link restored";

private:
    Room& room_locked(const std::string& name);
    void enter_locked(const std::shared_ptr<Member>& m, Room& room, bool welcome, const std::vector<std::string>* history,
                      FlushList& flush);
    void leave_room_locked(Member& m, std::string_view notice, FlushList& flush);
    void broadcast_locked(Room& room, const MessageRef& line, const Member* except, FlushList& flush);
    void remember_locked(Room& room, const MessageRef& line);

    HubOptions o_;
    Delivery& out_;
    HubMirror* mirror_ = nullptr;
    std::mutex mutex_;
    std::map<std::string, std::unique_ptr<Room>> rooms_;  // by chat_key(name), so /rooms is sorted
    std::unordered_map<std::string, Member*> nicks_;       // by chat_key(nick)
    bool link_down_ = false;                               // members have been told the link is down
    std::atomic<std::uint64_t> clients_{0}, messages_{0}, deliveries_{0};
};

// "* N in #room: a, b, c", names in case-insensitive order.
std::string who_text(std::string_view room, std::vector<std::string> names);
// The room a /join names: without its '#'.
std::string_view room_argument(std::string_view arg);

}  // namespace coserve::services::chat
