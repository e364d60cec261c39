// coserved: the daemon, one program that uses the library. Exit status: 0
// after a clean stop, 1 on a runtime failure (a port already in use, another
// instance running, privileges), 2 on a configuration or usage error. The
// keys only a daemon acts on ([server] pid_file, user, group) are acted on
// here (daemon.hpp), which it tells the library (ServerHooks::daemon_keys).
#include <coserve/version.hpp>
#include <coserve/config.hpp>
#include <coserve/log.hpp>
#include <coserve/server.hpp>
#include <coserve/services.hpp>

#include "daemon.hpp"

#include <boost/program_options.hpp>

#include <systemd/sd-daemon.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>

namespace po = boost::program_options;
using coserve::Severity;

namespace {

coserve::log::Options log_options(const coserve::Config& c) {
    return {c.server.log_level, c.server.log_file, c.server.log_json, c.server.syslog, c.server.log_rotate_size};
}

// The command line; nullopt when it is answered already (--help, --version,
// or an error: `status` says which).
std::optional<po::variables_map> parse_command_line(int argc, char** argv, int& status) {
    po::options_description desc("Usage: coserved [OPTIONS]\n\nOptions");
    desc.add_options()
        ("config,c", po::value<std::string>()->default_value("config/coserved.ini"), "configuration file (INI)")
        ("check-config,t", "validate the configuration, print the effective instances and endpoints, and exit")
        ("daemon,d", "detach and run in the background; exit 0 once every endpoint is bound, 1 if not")
        ("reload", "send SIGHUP to the coserved whose pid is in [server] pid_file, and exit")
        ("log-level", po::value<std::string>(), "trace|debug|info|warning|error|fatal (overrides [server] log_level)")
        ("threads", po::value<int>(), "event-loop threads (overrides [server] threads)")
        ("version,V", "print the version and exit")
        ("help,h", "print this help and exit");
    po::variables_map vm;
    status = 0;
    try {
        po::store(po::parse_command_line(argc, argv, desc), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "coserved: " << e.what() << " (try --help)\n";
        status = 2;
        return std::nullopt;
    }
    if (vm.count("help")) {
        std::cout << desc << "\n";
        return std::nullopt;
    }
    if (vm.count("version")) {
        std::cout << "coserved " COSERVE_VERSION_STRING "\n";
        return std::nullopt;
    }
    return vm;
}

// The configuration file with the command line's overrides. Throws ConfigError.
coserve::Config load(const po::variables_map& vm) {
    auto config = coserve::load_config_file(vm["config"].as<std::string>());
    if (vm.count("log-level")) {
        try {
            config.server.log_level = coserve::parse_severity(vm["log-level"].as<std::string>());
        } catch (const std::invalid_argument& e) {
            throw coserve::ConfigError(std::string("--log-level: ") + e.what());
        }
    }
    if (vm.count("threads")) {
        const int t = vm["threads"].as<int>();
        if (t < 1 || t > 256) throw coserve::ConfigError("--threads: expected 1 to 256");
        config.server.threads = t;
    }
    return config;
}

// --reload: SIGHUP to the running daemon named by the pid file.
int send_reload(const coserve::Config& config, const std::string& path) {
    if (config.server.pid_file.empty()) {
        std::cerr << "coserved: --reload needs [server] pid_file in " << path << "\n";
        return 2;
    }
    try {
        const int pid = coserve::daemon::read_pid(config.server.pid_file);
        if (::kill(pid, SIGHUP) != 0) throw std::runtime_error("cannot signal pid " + std::to_string(pid) + ": " + std::strerror(errno));
        std::cout << "coserved: sent SIGHUP to pid " << pid << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "coserved: " << e.what() << "\n";
        return 1;
    }
}

// What the server gets from the daemon: log reopening and reloads on SIGHUP,
// the service manager's notifications, watchdog and inherited sockets.
coserve::ServerHooks server_options(const po::variables_map& vm) {
    coserve::ServerHooks options;
    options.daemon_keys = true;  // pid_file, user and group: acted on in run() and main()
    options.reopen_logs = [] { coserve::log::reopen(); };
    options.reload = [vm]() -> std::optional<coserve::Config> {
        try {
            auto next = load(vm);
            coserve::log::configure(log_options(next));
            return next;
        } catch (const std::exception& e) {
            COSERVE_LOG(Severity::error, "", "") << "reload: " << e.what() << "; the running configuration stays";
        }
        return std::nullopt;
    };
    // Under systemd (Type=notify) these reach the service manager; elsewhere sd_notify does nothing.
    options.notify = [](const std::string& state) { sd_notify(0, state.c_str()); };
    // Socket activation: LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES.
    char** names = nullptr;
    const int inherited = sd_listen_fds_with_names(1, &names);
    for (int i = 0; i < inherited; ++i) {
        options.inherited.push_back({SD_LISTEN_FDS_START + i, names && names[i] ? names[i] : "unknown"});
        if (names) std::free(names[i]);
    }
    std::free(names);
    std::uint64_t watchdog_usec = 0;
    if (sd_watchdog_enabled(0, &watchdog_usec) > 0)
        options.watchdog_interval = std::chrono::duration_cast<coserve::Duration>(std::chrono::microseconds(watchdog_usec / 2));
    return options;
}

// Binds, drops privileges, reports readiness (to the parent of --daemon and
// to the service manager), then serves until stopped. Throws on failure.
void serve(coserve::Config config, const po::variables_map& vm, int& report) {
    const std::string user = config.server.user, group = config.server.group;
    std::size_t enabled = 0;
    for (const auto& inst : config.instances) enabled += inst.options.enabled;
    coserve::Server server(std::move(config), server_options(vm));
    server.start();
    if (!user.empty()) {
        coserve::daemon::drop_privileges(user, group);
        COSERVE_LOG(Severity::info, "", "") << "running as user " << user << (group.empty() ? "" : ", group " + group);
    }
    coserve::daemon::report_started(report);
    report = -1;
    sd_notifyf(0, "READY=1\nMAINPID=%lu\nSTATUS=serving %zu instance(s)", static_cast<unsigned long>(::getpid()), enabled);
    server.run();
}

}  // namespace

int main(int argc, char** argv) {
    coserve::services::register_builtin();
    int status = 0;
    const auto vm = parse_command_line(argc, argv, status);
    if (!vm) return status;
    const auto path = (*vm)["config"].as<std::string>();
    coserve::Config config;
    try {
        config = load(*vm);
    } catch (const coserve::ConfigError& e) {
        std::cerr << "coserved: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "coserved: cannot load " << path << ": " << e.what() << "\n";
        return 1;
    }
    if (vm->count("check-config")) {
        std::cout << "coserved: configuration " << path << " is valid\n" << coserve::describe(config);
        return 0;
    }
    if (vm->count("reload")) return send_reload(config, path);

    int report = -1;
    if (vm->count("daemon")) {
        if (config.server.log_file.empty() && !config.server.syslog)
            std::cerr << "coserved: warning: --daemon without log_file or syslog: the log is discarded\n";
        report = coserve::daemon::detach();
    }
    auto failed = [&](const std::string& message) {
        COSERVE_LOG(Severity::fatal, "", "") << message;
        coserve::daemon::report_failed(report, message);
        return 1;
    };
    try {
        coserve::log::configure(log_options(config));
    } catch (const std::exception& e) {
        return failed(std::string("cannot open the log: ") + e.what());
    }
    std::optional<coserve::daemon::PidFile> pid_file;
    try {
        if (!config.server.pid_file.empty()) pid_file.emplace(config.server.pid_file);
        const long long files = coserve::raise_file_limit();
        COSERVE_LOG(Severity::info, "", "")
            << "coserved " COSERVE_VERSION_STRING " starting with " << config.server.threads << " thread(s)"
            << (config.server.threads > 1 && config.server.loop_per_thread ? ", a loop each" : "") << "; config " << path
            << "; open file limit " << (files < 0 ? std::string("unlimited") : std::to_string(files));
        serve(std::move(config), *vm, report);
    } catch (const std::exception& e) {
        return failed(e.what());
    }
    return 0;
}
