// chat across daemons (backend = redis://): the directory over Redis and the
// hub's mirror there.
//
// Names are claimed with a script that keeps them unique across daemons;
// each daemon's membership (nick -> its rooms, separated by spaces: an IRC
// member may be in several) is a hash refreshed every ttl/3
// and expiring with the ttl, so a daemon that dies leaves /who on its own.
// Room events are published on PREFIX:room:KEY, private messages on
// PREFIX:user:KEY (each daemon subscribes to its own members'), as the
// records of chat_event_record(). History is a list per room. While the link
// is down, everything degrades to this daemon alone and says so once.
#pragma once

#include "directory.hpp"
#include "redis_link.hpp"

#include <coserve/service.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

namespace coserve::services::chat {

struct ClusterOptions {
    detail::RedisAddress address;
    std::string password;
    std::string prefix = "coserve";
    std::string log_name;                  // the instance, for the link's log lines
    std::chrono::seconds ttl{30};          // expiry of names and membership in Redis
    std::size_t history = 20;
};

class Cluster final : public Directory, public HubMirror {
public:
    Cluster(ClusterOptions o, Hub& hub, Delivery& out);
    ~Cluster() override { stop(); }

    void start(const boost::asio::any_io_executor& executor);
    void stop();  // after the sessions
    bool up() const noexcept { return link_ && link_->up(); }
    void metrics(MetricsWriter& w) const;

    // Directory
    std::shared_ptr<Asking> asking(const boost::asio::any_io_executor& executor) override;
    boost::asio::awaitable<std::string> guest(Asking* a) override;
    boost::asio::awaitable<bool> claim(Asking* a, const std::string& name) override;
    void release(const std::string& name) override;
    boost::asio::awaitable<std::optional<Others>> others(Asking* a) override;
    boost::asio::awaitable<std::optional<std::vector<std::string>>> history(Asking* a, const std::string& room) override;
    bool send_private(const std::shared_ptr<Member>& from, const std::string& to, std::string_view text) override;

    // HubMirror (hub mutex held)
    void name_taken(std::string_view nick) override;
    void name_released(std::string_view nick) override;
    void placed(std::string_view nick, std::string_view rooms) override;
    void event(std::string_view kind, std::string_view room, std::string_view nick, std::string_view text) override;
    void remember(std::string_view room, const MessageRef& line) override;

private:
    boost::asio::awaitable<std::optional<detail::RedisReply>> ask(Asking* a, std::vector<std::string> argv);
    std::vector<std::string> claim_command(std::string_view nick) const;
    void on_tick(detail::RedisLink& link);
    void on_message(std::string_view channel, std::string_view payload);
    void on_state(bool up);

    ClusterOptions o_;
    Hub& hub_;
    Delivery& out_;
    std::string id_;  // this daemon's (instance's) id in published events
    const std::string room_channel_, user_channel_;  // "PREFIX:room:", "PREFIX:user:"
    const std::string nick_prefix_, who_prefix_, history_prefix_, daemons_key_, guests_key_, ttl_;
    std::string who_key_;  // PREFIX:who:ID, this daemon's members
    std::shared_ptr<detail::RedisLink> link_;
    std::atomic<std::uint64_t> published_{0}, unpublished_{0}, received_{0}, invalid_{0};
};

}  // namespace coserve::services::chat
