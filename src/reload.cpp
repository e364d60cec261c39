// Reload: the plan (reload_plan.cpp, pure) applied to the running server.
//
// Instances that did not change run on untouched; removed ones stop
// listening and their open connections finish normally; changed ones are
// rebuilt with the new options for new connections (sockets of unchanged
// endpoints are handed over, never closed, so no connection attempt is
// refused); new ones start. Binding what is new comes first: if it fails,
// nothing changes.
#include "server_impl.hpp"

#include <coserve/log.hpp>

#include <unistd.h>

namespace coserve {

void Server::Impl::reload(Config next) {
    if (state->stopping) return;
    std::vector<const InstanceConfig*> wanted;  // the enabled instances of the new file
    for (const auto& ic : next.instances)
        if (ic.options.enabled) wanted.push_back(&ic);
    std::vector<detail::RunningInstance> running;
    for (const auto& inst : instances) {
        detail::RunningInstance r{&inst->config, {}, {}};
        for (const auto& ep : inst->tcp_bound) r.tcp_bound.emplace_back(ep.address(), ep.port());
        for (const auto& ep : inst->udp_bound) r.udp_bound.emplace_back(ep.address(), ep.port());
        running.push_back(std::move(r));
    }
    const auto plan = detail::plan_reload(running, wanted);
    BoundSockets sockets;
    try {
        bind_planned(plan, sockets);
    } catch (const BindError& e) {
        COSERVE_LOG(Severity::error, "", "") << "reload failed: " << e.what() << "; the running configuration stays";
        return;
    }
    retire_planned(plan, sockets);
    std::vector<std::unique_ptr<Instance>> next_instances;
    for (std::size_t w = 0; w < wanted.size(); ++w) {
        if (plan.keep[w]) {
            auto& kept = instances[*plan.keep[w]];
            kept->set_tls(wanted[w]->tls);  // the files are read again at each reload
            detail::warn_expiry(*kept);
            next_instances.push_back(std::move(kept));
            continue;
        }
        auto inst = assemble(*wanted[w], sockets);
        launch(*inst);
        next_instances.push_back(std::move(inst));
    }
    {
        std::lock_guard lock(instances_mutex);
        for (auto& inst : instances)
            if (inst) retired.push_back(std::move(inst));
        instances = std::move(next_instances);
    }
    refresh_udp_ports();
    apply_server_settings(std::move(next));
    COSERVE_LOG(Severity::info, "", "") << "reload: " << plan.started << " started, " << plan.changed << " changed, "
                                        << plan.stopped << " stopped, " << plan.unchanged << " unchanged";
}

// 1. What nobody holds yet: from the service manager if it gave us the
// endpoint, else bound now. Throws BindError; `sockets` then closes them.
void Server::Impl::bind_planned(const detail::ReloadPlan& plan, BoundSockets& sockets) {
    for (const auto& b : plan.tcp_bind) {
        if (auto it = inherited_tcp.find(b.endpoint.to_string()); it != inherited_tcp.end())
            sockets.tcps.emplace(b.key, BoundSockets::Tcp{::dup(it->second.first), it->second.second});
        else
            sockets.bind_tcp(*ioc, b.instance, b.kind, b.endpoint);
    }
    for (const auto& b : plan.udp_bind) {
        if (auto it = inherited_udp.find(b.endpoint.to_string()); it != inherited_udp.end())
            sockets.udps.emplace(b.key, BoundSockets::Udp{::dup(it->second.first),
                                                          udp::endpoint(it->second.second.address(), it->second.second.port())});
        else
            sockets.bind_udp(*ioc, b.instance, b.endpoint);
    }
}

// 2. Leaving instances stop accepting: each socket goes to `sockets` under
// the key a new instance wants it by, or closes. Their sessions finish.
void Server::Impl::retire_planned(const detail::ReloadPlan& plan, BoundSockets& sockets) {
    for (std::size_t r = 0; r < instances.size(); ++r) {
        if (plan.fate[r] == detail::ReloadPlan::Fate::kept) continue;
        Instance& inst = *instances[r];
        inst.retired = true;
        boost::system::error_code ignored;
        for (std::size_t i = 0; i < inst.acceptors.size(); ++i) {
            if (auto to = plan.tcp_handover.find({r, i}); to != plan.tcp_handover.end())
                sockets.tcps.emplace(to->second, BoundSockets::Tcp{inst.acceptors[i].release(ignored), inst.tcp_bound[i]});
            else
                inst.acceptors[i].close(ignored);
        }
        for (std::size_t i = 0; i < inst.udp_sockets.size(); ++i) {
            if (auto to = plan.udp_handover.find({r, i}); to != plan.udp_handover.end())
                sockets.udps.emplace(to->second, BoundSockets::Udp{inst.udp_sockets[i].release(ignored), inst.udp_bound[i]});
            else
                inst.udp_sockets[i].close(ignored);
        }
        if (plan.fate[r] == detail::ReloadPlan::Fate::removed)
            COSERVE_LOG(Severity::info, inst.config.name, "") << "removed by reload; open connections finish";
    }
}

// Server-wide settings: what applies at once, and what needs a restart.
void Server::Impl::apply_server_settings(Config next) {
    if (next.server.threads != config.server.threads)
        COSERVE_LOG(Severity::warning, "", "") << "reload: threads changes need a restart (still " << config.server.threads << ")";
    if (!(next.metrics.http == config.metrics.http) || !(next.metrics.https == config.metrics.https))
        COSERVE_LOG(Severity::warning, "", "") << "reload: [metrics] http and https changes need a restart";
    if (next.server.loop_per_thread != config.server.loop_per_thread)
        COSERVE_LOG(Severity::warning, "", "") << "reload: thread_model changes need a restart (still "
                                               << (config.server.loop_per_thread ? "per-thread" : "shared") << ")";
    auto metrics_tls = next.metrics.tls;
    next.server.threads = config.server.threads;
    next.server.loop_per_thread = config.server.loop_per_thread;
    next.metrics = config.metrics;
    if (metrics_endpoint && metrics_tls) {  // new certificate files apply at once
        metrics_endpoint->set_tls(metrics_tls);
        next.metrics.tls = metrics_tls;
        detail::warn_expiry(*metrics_endpoint);
    }
    state->max_connections = next.server.max_connections;
    config = std::move(next);
}

}  // namespace coserve
