// guessd: coserve's built-in services plus the guessing game, from one INI
// file, with the daemon's conveniences: SIGHUP reloads the file (a bad edit is
// logged and the running configuration stays), SIGINT/SIGTERM drain and stop.
//   guessd guess.ini        then: nc 127.0.0.1 7500
#include "guess.hpp"

#include <coserve/config.hpp>
#include <coserve/log.hpp>
#include <coserve/server.hpp>
#include <coserve/services.hpp>

#include <iostream>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: guessd CONFIG.ini\n";
        return 2;
    }
    const std::string path = argv[1];
    try {
        coserve::services::register_builtin();
        coserve::register_service(guess::service);
        auto config = coserve::load_config_file(path);
        coserve::log::init(config.server.log_level);
        coserve::ServerHooks options;
        options.reload = [&path]() -> std::optional<coserve::Config> {
            try {
                return coserve::load_config_file(path);
            } catch (const std::exception& e) {  // ConfigError, or a file that vanished
                COSERVE_LOG(coserve::Severity::error, "", "") << "reload: " << e.what() << "; the running configuration stays";
                return std::nullopt;
            }
        };
        coserve::Server server(std::move(config), std::move(options));
        server.start();
        server.run();
    } catch (const coserve::ConfigError& e) {
        std::cerr << "guessd: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "guessd: " << e.what() << "\n";
        return 1;
    }
}
