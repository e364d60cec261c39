# Thin wrapper over CMake presets. `make run` and `make test` install what is
# missing first (scripts/install-deps).
.PHONY: all deps build run test deb clean

all: build

deps:
	@scripts/install-deps

build: deps
	cmake --preset release
	cmake --build --preset release

run: build
	./build/release/coserved --config config/coserved.ini

# The suite runs on the sanitized Debug build; the Release daemon is compiled
# too, because GCC's optimizer finds warnings (errors here) that Debug does not.
test: deps
	cmake --preset debug
	cmake --build --preset debug
	ctest --preset debug
	cmake --preset release
	cmake --build --preset release --target coserved

# build/release/coserved_<version>_amd64.deb
deb: build
	cd build/release && cpack -G DEB

clean:
	rm -rf build
