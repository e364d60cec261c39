// chat: where names, members and history are looked up beyond this daemon.
//
// The commands that need it (/nick, /who, /rooms, /join, /msg to someone
// not here, and a newcomer's guest name and history) ask a Directory, then
// apply the answer through the hub, so each check is written once. This
// class is the local directory: this daemon is the whole chat, every answer
// is immediate. chat/cluster.cpp is the one over Redis.
#pragma once

#include "hub.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace coserve::services::chat {

// A session's pending question to a remote directory (its own type; none here).
struct Asking;

class Directory {
public:
    virtual ~Directory() = default;
    // One per session, before it asks anything (null: nothing to keep).
    virtual std::shared_ptr<Asking> asking(const boost::asio::any_io_executor&) { return nullptr; }
    // A guest name no daemon has given out; "": the hub picks the next local one.
    virtual boost::asio::awaitable<std::string> guest(Asking*) { co_return std::string(); }
    // Reserves `name` beyond this daemon; false if another daemon has it.
    virtual boost::asio::awaitable<bool> claim(Asking*, const std::string&) { co_return true; }
    virtual void release(const std::string&) {}
    // The other daemons' members; nullopt: none known.
    virtual boost::asio::awaitable<std::optional<Others>> others(Asking*) { co_return std::nullopt; }
    // A room's recent lines, oldest first; nullopt: this daemon's own.
    virtual boost::asio::awaitable<std::optional<std::vector<std::string>>> history(Asking*, const std::string&) {
        co_return std::nullopt;
    }
    // A private message for a user not on this daemon: false if nobody can be
    // reached from here; otherwise sent, and an error told to `from` later.
    virtual bool send_private(const std::shared_ptr<Member>& /*from*/, const std::string& /*to*/, std::string_view /*text*/) {
        return false;
    }
};

}  // namespace coserve::services::chat
