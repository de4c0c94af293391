# Thin wrapper over CMake presets. `make test` is what CI runs (through .ci/run).
PRESET ?= release
JOBS ?= $(shell nproc)

.PHONY: setup build run test bench asan clean

setup:
	scripts/setup

build: setup
	cmake --preset $(PRESET) >/dev/null
	cmake --build --preset $(PRESET) -j $(JOBS)

run: build
	build/$(PRESET)/apps/kiln/kiln serve

test:
	scripts/test

bench: build
	build/$(PRESET)/apps/kiln/kiln bench --model $${MODEL:?set MODEL=DIR}

clean:
	rm -rf build
