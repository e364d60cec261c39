// kvd: coserve's built-in services plus kv, from one INI file.
//   kvd kv.ini        then: printf 'SET a 1\nGET a\n' | nc -N 127.0.0.1 7400
#include "kv.hpp"

#include <coserve/config.hpp>
#include <coserve/server.hpp>
#include <coserve/services.hpp>

#include <iostream>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: kvd CONFIG.ini\n";
        return 2;
    }
    try {
        coserve::services::register_builtin();
        coserve::register_service(kv::service);
        coserve::Server server(coserve::load_config_file(argv[1]));
        server.start();
        server.run();  // until SIGINT or SIGTERM
    } catch (const coserve::ConfigError& e) {
        std::cerr << "kvd: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "kvd: " << e.what() << "\n";
        return 1;
    }
}
