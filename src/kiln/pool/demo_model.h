// The model `kiln serve` serves when none is configured: a small llama-family checkpoint with
// random weights and the real Llama 3 tokenizer (so text round-trips), made once in the user's
// data directory. Its answers are noise; it exists so that `kiln serve` works out of the box.
#pragma once

#include <filesystem>

#include "kiln/core/status.h"

namespace kiln::pool {

inline constexpr const char* kDemoModelName = "kiln-demo";
inline constexpr const char* kDemoModelDescription =
    "Demo model with RANDOM weights: its output is noise. Serve a real model with `kiln serve --model DIR`.";

// Returns DATA_DIR/models/kiln-demo, making it first when it is missing or incomplete.
Result<std::filesystem::path> ensure_demo_model(const std::filesystem::path& data_dir);

}  // namespace kiln::pool
