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
#include <cstdint>
#include <functional>
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
    std::string topic, topic_by;  // shared by line and IRC members; kept while the room has members
    std::int64_t topic_at = 0;    // seconds since the epoch
    // Join and leave notices not yet told (see Hub::set_notice_flusher), in order.
    struct Notice {
        Said::Kind kind;  // join, part, quit
        std::string nick, text, reason;
        Member* joiner = nullptr;  // a join's member while it is in the room
    };
    std::vector<Notice> notices;
};

// Other daemons' members, as /who and /rooms count them: (nick, room).
using Others = std::vector<std::pair<std::string, std::string>>;

// Called with the hub's mutex held (chat/cluster.cpp implements it).
class HubMirror {
public:
    virtual ~HubMirror() = default;
    virtual void name_taken(std::string_view nick) = 0;     // a member has this name now
    virtual void name_released(std::string_view nick) = 0;  // ... no longer
    // The rooms a member is in now, separated by spaces ("" for none):
    // before a join is heard, and before a leave is heard.
    virtual void placed(std::string_view nick, std::string_view rooms) = 0;
    // kind: msg, me, notice, join, leave (text: the notice), nick (nick: the
    // new name, text: the old), topic.
    virtual void event(std::string_view kind, std::string_view room, std::string_view nick, std::string_view text) = 0;
    virtual void remember(std::string_view room, const MessageRef& line) = 0;  // a line for the room's history
};

struct HubOptions {
    std::string room = "lobby";  // where a newcomer starts
    std::size_t history = 20;    // lines a room keeps for newcomers
    std::size_t max_clients = 1000;
    std::string host = "coserve";     // irc_server_name: IRC's server name and the host of every prefix
    std::size_t max_channels = 20;    // irc_max_channels: rooms one IRC member may be in
};

// What IRC's NAMES, WHO, LIST and WHOIS show, copied out under the lock.
struct RoomView {
    std::string name, topic, topic_by;
    std::int64_t topic_at = 0;
    std::vector<std::string> nicks;  // this daemon's members, then the others'
    std::vector<std::string> away;   // per nick: AWAY text ("" here, or not known)
};
struct UserView {
    std::string nick, away;
    Format format = Format::line;
    std::vector<std::string> rooms;
};

class Hub {
public:
    Hub(HubOptions o, Delivery& out) : o_(std::move(o)), out_(out) {}
    Hub(const Hub&) = delete;
    void set_mirror(HubMirror* mirror) { mirror_ = mirror; }  // before the first member
    // Join and leave notices in batches (set before the first member): a
    // room hears its joins and leaves once per loop pass, all of that pass's
    // in one broadcast, instead of one broadcast each (10,000 members
    // joining, or leaving at once, would otherwise cost 50 million notices,
    // queued in long turns of the loop). `start` is called (hub mutex held)
    // when a batch is waiting and no flusher runs; the flusher then calls
    // settle_notices() until it returns false. Whatever else happens in a
    // room (a line, a topic, a nick change) tells its batch first, and a
    // member that leaves is told what was waiting for it, so every member
    // hears each room's events in order. Batched: a join, a line member's
    // /join to another room, the quit of a member in one room, another
    // daemon's join and leave; an IRC PART, and the quit of an IRC member
    // in several rooms (told once), go at once. Without a flusher every
    // notice goes at once.
    void set_notice_flusher(std::function<void()> start) { start_flusher_ = std::move(start); }
    // Queues every waiting batch; false (and the flusher ends) when none was.
    bool settle_notices(FlushList& flush);
    void flusher_ended();  // the flusher failed: the next batch starts another
    const HubOptions& options() const noexcept { return o_; }

    // A newcomer: a name (`guest` if given and free here, else the process's
    // next guestN), the start room, the welcome, the room's history
    // (`history`, oldest first, or this daemon's when null). False when full.
    bool admit(const std::shared_ptr<Member>& m, const std::string& guest, const std::vector<std::string>* history,
               FlushList& flush);
    // An IRC client at registration: its name, in no room yet.
    enum class Admission { ok, taken, full };
    Admission admit_named(const std::shared_ptr<Member>& m, const std::string& nick);
    // Out of its rooms and of the names; line members hear `notice` ("left",
    // ...), IRC members a QUIT with `reason` (empty: the notice), once each.
    void remove(Member& m, std::string_view notice, FlushList& flush, std::string_view reason = {});
    // A line (or an action, "/me") of a line member to its room.
    void say(Member& m, bool action, std::string_view text, FlushList& flush);
    // Lines a line member said in a row, in one broadcast; each is kept in
    // the room's history (and told to the cluster) as its own line.
    void say_lines(Member& m, const SaidLines& lines, FlushList& flush);
    // An IRC member's PRIVMSG (msg, me) or NOTICE to one of its rooms.
    enum class Sent { ok, no_such_room, not_in_room };
    Sent say_in(Member& m, std::string_view room, Said::Kind kind, std::string_view text, FlushList& flush);
    // A private message (msg, me or notice) to a member of this daemon:
    // nullopt if there is none of that name, else the recipient's AWAY text.
    std::optional<std::string> private_message(Member& from, std::string_view to, Said::Kind kind,
                                               std::string_view text, FlushList& flush);

    // The checks: an error line to reply, or "" when the command may go on.
    std::string nick_error(const Member& m, std::string_view name);
    std::string join_error(const Member& m, std::string_view room);
    bool name_free(const Member& m, std::string_view name);
    // Applied after the checks (and the cluster's answer): false if the
    // name was taken here meanwhile, or a line member has left its room.
    bool rename(Member& m, const std::string& name, FlushList& flush);
    // A line member's /join: false if `m` left or is in `room` already.
    bool move(const std::shared_ptr<Member>& m, const std::string& room, const std::vector<std::string>* history,
              FlushList& flush);
    // An IRC member's JOIN: its own JOIN, the topic, the names (with
    // `others`' members of the room) and the history (as notices), then
    // the room hears it.
    enum class Joined { ok, already, too_many };
    Joined join(const std::shared_ptr<Member>& m, const std::string& room, const std::vector<std::string>* history,
                const Others* others, FlushList& flush);
    // An IRC member's PART; JOIN 0 parts every room.
    enum class Parted { ok, no_such_room, not_in_room };
    Parted part(Member& m, std::string_view room, std::string_view reason, FlushList& flush);
    void part_all(Member& m, FlushList& flush);
    // A topic set by a member of the room (IRC's TOPIC, the line users' /topic).
    Parted set_topic(Member& m, std::string_view room, std::string_view topic, FlushList& flush);
    static constexpr std::size_t max_topic = 300;  // bytes; longer topics are cut (TOPICLEN)
    // A line member's /topic: shows its room's topic, or sets it.
    void line_topic(Member& m, std::string_view topic, FlushList& flush);
    void set_away(Member& m, std::string away);
    // /who or /rooms: this daemon's members and `others` (null: none).
    void tell_members(Member& m, ChatCommand::Kind kind, const Others* others, FlushList& flush);

    // Views for IRC's queries; `others` adds other daemons' members.
    std::optional<RoomView> room_view(std::string_view room, const Others* others);
    std::vector<RoomView> room_list(const Others* others);  // every room, topics and counts (LIST)
    std::optional<UserView> user_view(std::string_view nick);
    // The rooms `m` is in, with the '#', separated by spaces.
    std::string channels_of(const Member& m);

    // From the cluster: an event in a room, a private message for a member here.
    void deliver(const ChatEvent& e, FlushList& flush);
    void deliver_private(std::string_view to_key, std::string_view from, std::string_view text, FlushList& flush);
    // A notice to everyone; `down` also goes to each newcomer until `restored`.
    void link_state(bool up, FlushList& flush);
    // (nick, rooms separated by spaces) of every member here in a room.
    Others placements();

    std::uint64_t clients() const noexcept { return clients_.load(std::memory_order_relaxed); }
    std::uint64_t messages() const noexcept { return messages_.load(std::memory_order_relaxed); }
    std::uint64_t deliveries() const noexcept { return deliveries_.load(std::memory_order_relaxed); }

    static constexpr std::string_view link_down_notice = "* notice: cluster link down, messages reach this server only";
    static constexpr std::string_view link_restored_notice = "* notice: cluster link restored";

private:
    // An event rendered at most once per format, on first need.
    struct Rendered {
        const Said& said;
        MessageRef line, irc;
    };
    const MessageRef& rendered(Rendered& r, Format f);
    Room& room_locked(const std::string& name);
    Room* find_room_locked(std::string_view name);
    Seat* seat_locked(Member& m, const Room& room);
    void enter_locked(const std::shared_ptr<Member>& m, Room& room, bool welcome, const std::vector<std::string>* history,
                      FlushList& flush);
    void irc_welcome_locked(Member& m, Room& room, const std::vector<std::string>* history, const Others* others,
                            FlushList& flush);
    // Out of one room, told what was waiting for it there; the room hears
    // `said` (a part or quit) unless it is null.
    void leave_room_locked(Member& m, Room& room, const Said* said, FlushList& flush);
    // Settles the room's batch first.
    void broadcast_locked(Room& room, Rendered& r, const Member* except, FlushList& flush);
    // `message(format)`: what a member of that format is sent, `lines` lines.
    template <class ByFormat>
    void broadcast_locked(Room& room, ByFormat&& message, std::size_t lines, const Member* except, FlushList& flush);
    // `n` lines (msg, me or notice) said by `m` in `room`, `said(i)` the
    // i-th: the room hears them in one broadcast, its history keeps the
    // lines (not the notices), the cluster is told each.
    template <class SaidAt>
    void say_locked(Member& m, Room& room, std::size_t n, SaidAt&& said, FlushList& flush);
    // A join, part or quit in `room`: into its batch (`joiner`: the member
    // that joined, null for another daemon's member or a leave).
    void announce_locked(Room& room, Member* joiner, const Said& said, FlushList& flush);
    // The room's waiting notices, to each member those after its own join.
    void settle_locked(Room& room, FlushList& flush);
    // The notices numbered `from` (of the room's batch) on, rendered for `f`.
    MessageRef batch_text(const Room& room, std::size_t from, Format f);
    static Said said_of(const Room& room, const Room::Notice& n);
    // Everyone who shares a room with `m` (and `m` itself when `self`), once.
    void tell_neighbours_locked(Member& m, Rendered& r, bool self, FlushList& flush);
    void remember_locked(Room& room, const MessageRef& line);
    void placed_locked(const Member& m);
    void set_topic_locked(Room& room, std::string_view topic, std::string_view by);

    HubOptions o_;
    Delivery& out_;
    HubMirror* mirror_ = nullptr;
    std::mutex mutex_;
    std::map<std::string, std::unique_ptr<Room>> rooms_;  // by chat_key(name), so /rooms is sorted
    std::unordered_map<std::string, Member*> nicks_;       // by chat_key(nick)
    std::uint64_t mark_ = 0;                               // the last Member::mark handed out
    bool link_down_ = false;                               // members have been told the link is down
    std::function<void()> start_flusher_;
    bool flusher_running_ = false;
    std::vector<Room*> batched_;  // the rooms with join notices waiting
    std::atomic<std::uint64_t> clients_{0}, messages_{0}, deliveries_{0};
};

// "* N in #room: a, b, c", names in case-insensitive order.
std::string who_text(std::string_view room, std::vector<std::string> names);
// The room a /join names: without its '#'.
std::string_view room_argument(std::string_view arg);

}  // namespace coserve::services::chat
