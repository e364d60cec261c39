// reversed: reverse on the framework alone (no built-in services), from one INI file.
#include <coserve/server.hpp>
#include <coserve/service.hpp>

#include <iostream>

extern const coserve::ServiceType reverse_service;

int main(int argc, char** argv) try {
    coserve::register_service(reverse_service);
    coserve::Server server(coserve::load_config_file(argc > 1 ? argv[1] : "reverse.ini"));
    server.start();
    server.run();  // until SIGINT or SIGTERM: drains, then returns
} catch (const std::exception& e) {
    std::cerr << "reversed: " << e.what() << "\n";
    return dynamic_cast<const coserve::ConfigError*>(&e) ? 2 : 1;  // 2: a mistake in the INI file
}
