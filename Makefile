# Thin wrapper over CMake presets. `make test` is what CI runs (through .ci/run).
PRESET ?= release
JOBS ?= $(shell nproc)

.PHONY: setup build run test bench asan fuzz clean

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

# libFuzzer targets (fuzz/*.cpp) over the text and grammar layers, built with clang, ASan and UBSan, each run
# for FUZZ_SECONDS. Corpora grow in build/fuzz/corpus/NAME, seeded from fuzz/corpus/NAME.
FUZZ_SECONDS ?= 60
FUZZ_CXX ?= clang++
FUZZ_CXXFLAGS := -std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
  -fno-sanitize-recover=undefined -Isrc -MMD -MP
FUZZ_SRCS := $(wildcard src/kiln/core/*.cpp src/kiln/text/*.cpp src/kiln/text/jinja/*.cpp src/kiln/grammar/*.cpp)
FUZZ_OBJS := $(patsubst %.cpp,build/fuzz/obj/%.o,$(FUZZ_SRCS))
FUZZ_BINS := $(patsubst fuzz/%.cpp,build/fuzz/%,$(wildcard fuzz/*.cpp))

build/fuzz/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

build/fuzz/%: fuzz/%.cpp $(FUZZ_OBJS)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJS) -lpcre2-8 -o $@

-include $(FUZZ_OBJS:.o=.d) $(FUZZ_BINS:=.d)

fuzz: $(FUZZ_BINS)
	@set -e; for bin in $(FUZZ_BINS); do \
	  name=$$(basename $$bin); mkdir -p build/fuzz/corpus/$$name; \
	  seeds=""; [ -d fuzz/corpus/$$name ] && seeds=fuzz/corpus/$$name; \
	  echo "fuzz: $$name for $(FUZZ_SECONDS)s"; \
	  KILN_SOURCE_DIR=$(CURDIR) $$bin -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=6144 -timeout=30 \
	    -print_final_stats=1 build/fuzz/corpus/$$name $$seeds > build/fuzz/$$name.log 2>&1 \
	    || { tail -n 60 build/fuzz/$$name.log; echo "fuzz: $$name failed (log: build/fuzz/$$name.log)"; exit 1; }; \
	  grep -E '^(Done|stat::number_of_executed_units)' build/fuzz/$$name.log || true; \
	done

clean:
	rm -rf build
