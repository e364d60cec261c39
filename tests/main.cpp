#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <coserve/server.hpp>
#include <coserve/services.hpp>

int main(int argc, char* argv[]) {
    coserve::services::register_builtin();
    coserve::raise_file_limit();  // the connection-limit tests hold thousands of sockets
    // SIGPIPE is left as it is: Server::start must ignore it itself (a
    // reset mid-sendfile would otherwise kill the daemon).
    return Catch::Session().run(argc, argv);
}
