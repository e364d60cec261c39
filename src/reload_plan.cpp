#include "reload_plan.hpp"

#include <algorithm>
#include <array>
#include <set>

namespace coserve::detail {

std::string socket_key(const std::string& instance, std::string_view kind, const Endpoint& e) {
    if (e.port != 0) return e.to_string();
    return instance + " " + (kind == "tcp" ? "" : std::string(kind) + " ") + e.to_string();
}

std::vector<Listener> listeners(const InstanceOptions& o, bool stream) {
    std::vector<Listener> out;
    if (!stream) {
        for (const auto& e : o.udp) out.push_back({"udp", e});
        return out;
    }
    for (const auto& e : o.tcp) out.push_back({"tcp", e});
    for (const auto& e : o.tls) out.push_back({"tls", e});
    for (const auto& fe : o.front_ends) {
        for (const auto& e : fe.tcp) out.push_back({fe.name, e});
        for (const auto& e : fe.tls) out.push_back({fe.name + "_tls", e});
    }
    return out;
}

namespace {

bool same(const InstanceConfig& a, const InstanceConfig& b) {
    return a.service_type == b.service_type && a.effective == b.effective;
}

// A socket is known by its configured endpoint and by the one it is bound
// to, so "127.0.0.1:0" that became port 41234 goes to a new
// "127.0.0.1:41234" rather than being bound twice.
std::array<std::string, 2> aliases(const std::string& instance, const Listener& configured,
                                   const std::pair<boost::asio::ip::address, unsigned short>& bound) {
    Endpoint actual;
    actual.address = bound.first;
    actual.port = bound.second;
    return {socket_key(instance, configured.kind, configured.endpoint), actual.to_string()};
}

// The sockets of one protocol: what leaving instances hold, what the new
// instances want, and from that the hand-overs and the binds.
void plan_sockets(const std::vector<RunningInstance>& running, const std::vector<const InstanceConfig*>& wanted,
                  ReloadPlan& plan, bool tcp) {
    auto configured = [tcp](const InstanceConfig& ic) { return listeners(ic.options, tcp); };
    std::set<std::string> held;
    for (std::size_t r = 0; r < running.size(); ++r) {
        if (plan.fate[r] == ReloadPlan::Fate::kept) continue;
        const auto list = configured(*running[r].config);
        const auto& bound = tcp ? running[r].tcp_bound : running[r].udp_bound;
        for (std::size_t i = 0; i < list.size() && i < bound.size(); ++i)
            for (const auto& k : aliases(running[r].config->name, list[i], bound[i])) held.insert(k);
    }
    std::set<std::string> wanted_keys;
    auto& binds = tcp ? plan.tcp_bind : plan.udp_bind;
    for (std::size_t w = 0; w < wanted.size(); ++w) {
        if (plan.keep[w]) continue;
        for (const auto& l : configured(*wanted[w])) {
            const auto k = socket_key(wanted[w]->name, l.kind, l.endpoint);
            wanted_keys.insert(k);
            if (!held.contains(k)) binds.push_back({k, wanted[w]->name, l.endpoint, l.kind});
        }
    }
    auto& handover = tcp ? plan.tcp_handover : plan.udp_handover;
    for (std::size_t r = 0; r < running.size(); ++r) {
        if (plan.fate[r] == ReloadPlan::Fate::kept) continue;
        const auto list = configured(*running[r].config);
        const auto& bound = tcp ? running[r].tcp_bound : running[r].udp_bound;
        for (std::size_t i = 0; i < list.size() && i < bound.size(); ++i)
            for (const auto& k : aliases(running[r].config->name, list[i], bound[i]))
                if (wanted_keys.contains(k) && !handover.contains({r, i})) handover[{r, i}] = k;
    }
}

}  // namespace

ReloadPlan plan_reload(const std::vector<RunningInstance>& running, const std::vector<const InstanceConfig*>& wanted) {
    ReloadPlan plan;
    plan.fate.assign(running.size(), ReloadPlan::Fate::removed);
    for (const auto* ic : wanted) {
        std::optional<std::size_t> kept;
        for (std::size_t r = 0; r < running.size(); ++r)
            if (running[r].config->name == ic->name) {
                if (same(*running[r].config, *ic)) {
                    kept = r;
                    plan.fate[r] = ReloadPlan::Fate::kept;
                } else {
                    plan.fate[r] = ReloadPlan::Fate::changed;
                }
            }
        plan.keep.push_back(kept);
        if (kept) ++plan.unchanged;
    }
    for (auto f : plan.fate) {
        if (f == ReloadPlan::Fate::changed) ++plan.changed;
        if (f == ReloadPlan::Fate::removed) ++plan.stopped;
    }
    for (const auto* ic : wanted)
        if (std::none_of(running.begin(), running.end(), [&](const RunningInstance& r) { return r.config->name == ic->name; }))
            ++plan.started;
    plan_sockets(running, wanted, plan, true);
    plan_sockets(running, wanted, plan, false);
    return plan;
}

}  // namespace coserve::detail
