// Subcommands register themselves: each cmd_*.cpp defines a static Command registration.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace kiln::app {

struct Command {
  std::string name;
  std::string description;
  // Adds options to `sub` and returns the function that runs the command (exit code).
  std::function<std::function<int()>(CLI::App& sub)> setup;
};

bool register_command(Command command);

}  // namespace kiln::app

#define KILN_REGISTER_COMMAND(var, ...) \
  static const bool var = ::kiln::app::register_command(::kiln::app::Command{__VA_ARGS__})
