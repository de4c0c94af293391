// Nested `kiln bench <name>` subcommands. `kiln bench --model DIR` with no nested subcommand runs
// the offline engine benchmark (cmd_bench.cpp); other files add e.g. `kiln bench serve` with
// KILN_REGISTER_BENCH_COMMAND, exactly as top-level commands register with KILN_REGISTER_COMMAND.
#pragma once

#include <vector>

#include "command.h"

namespace kiln::app {

bool register_bench_command(Command command);
// Every registered nested bench command (cmd_bench.cpp adds them under `kiln bench`).
const std::vector<Command>& bench_commands();

}  // namespace kiln::app

#define KILN_REGISTER_BENCH_COMMAND(var, ...) \
  static const bool var = ::kiln::app::register_bench_command(::kiln::app::Command{__VA_ARGS__})
