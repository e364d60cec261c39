#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <coserve/server.hpp>

#include <csignal>

int main(int argc, char* argv[]) {
    coserve::raise_file_limit();  // the connection-limit tests hold thousands of sockets
    std::signal(SIGPIPE, SIG_IGN);
    return Catch::Session().run(argc, argv);
}
