// The built-in services (echo, uppercase, daytime, time, adder, hello,
// discard, chargen, chat, files), in a library of their own: libcoserve-
// services (CMake: find_package(coserve 3 REQUIRED COMPONENTS services),
// coserve::services; pkg-config: coserve-services), which brings ICU,
// OpenSSL and hiredis. A program that uses only the framework does not link
// them.
#pragma once

namespace coserve::services {

// Makes the built-in service types known to the configuration loader, as
// register_service() does for a program's own. Call it before loading a
// configuration that names them; calling it again does nothing. Not
// thread-safe against a concurrent configuration load.
void register_builtin();

}  // namespace coserve::services
