// Catch2 entry point for build/unit-tests; test files live beside it, mirroring lib/.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
