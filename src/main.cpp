// coserved: the daemon. Exit status: 0 after a clean stop, 1 on a runtime
// failure (e.g. a port already in use), 2 on a configuration or usage error.
#include <coserve/config.hpp>
#include <coserve/log.hpp>
#include <coserve/server.hpp>

#include <boost/program_options.hpp>

#include <iostream>

#ifndef COSERVE_VERSION
#define COSERVE_VERSION "0.0.0"
#endif

namespace po = boost::program_options;

int main(int argc, char** argv) {
    po::options_description desc("Usage: coserved [OPTIONS]\n\nOptions");
    desc.add_options()
        ("config,c", po::value<std::string>()->default_value("config/coserved.ini"), "configuration file (INI)")
        ("check-config,t", "validate the configuration, print the effective instances and endpoints, and exit")
        ("log-level", po::value<std::string>(), "trace|debug|info|warning|error|fatal (overrides [server] log_level)")
        ("threads", po::value<int>(), "event-loop threads (overrides [server] threads)")
        ("version,V", "print the version and exit")
        ("help,h", "print this help and exit");
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, desc), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "coserved: " << e.what() << " (try --help)\n";
        return 2;
    }
    if (vm.count("help")) {
        std::cout << desc << "\n";
        return 0;
    }
    if (vm.count("version")) {
        std::cout << "coserved " COSERVE_VERSION "\n";
        return 0;
    }

    const auto path = vm["config"].as<std::string>();
    coserve::Config config;
    try {
        config = coserve::load_config_file(path);
        if (vm.count("log-level")) {
            try {
                config.server.log_level = coserve::parse_severity(vm["log-level"].as<std::string>());
            } catch (const std::invalid_argument& e) {
                throw coserve::ConfigError(std::string("--log-level: ") + e.what());
            }
        }
        if (vm.count("threads")) {
            int t = vm["threads"].as<int>();
            if (t < 1 || t > 256) throw coserve::ConfigError("--threads: expected 1 to 256");
            config.server.threads = t;
        }
    } catch (const coserve::ConfigError& e) {
        std::cerr << "coserved: " << e.what() << "\n";
        return 2;
    }
    if (vm.count("check-config")) {
        std::cout << "coserved: configuration " << path << " is valid\n" << coserve::describe(config);
        return 0;
    }

    coserve::log::init(config.server.log_level);
    const long long files = coserve::raise_file_limit();
    COSERVE_LOG(coserve::Severity::info, "", "")
        << "coserved " COSERVE_VERSION " starting with " << config.server.threads << " thread(s); config " << path
        << "; open file limit " << (files < 0 ? std::string("unlimited") : std::to_string(files));
    try {
        coserve::Server server(std::move(config));
        server.start();
        server.run();
    } catch (const coserve::BindError& e) {
        COSERVE_LOG(coserve::Severity::fatal, "", "") << e.what();
        return 1;
    } catch (const std::exception& e) {
        COSERVE_LOG(coserve::Severity::fatal, "", "") << e.what();
        return 1;
    }
    return 0;
}
