// guess as a plugin for the stock coserved:  [guess]  plugin = guess.so
#include "guess.hpp"

#include <coserve/plugin.hpp>

COSERVE_PLUGIN(guess::service)
