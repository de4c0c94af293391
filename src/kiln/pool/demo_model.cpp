#include "kiln/pool/demo_model.h"

#include "kiln/core/log.h"
#include "kiln/core/str.h"
#include "kiln/model/make_model.h"

namespace kiln::pool {

Result<std::filesystem::path> ensure_demo_model(const std::filesystem::path& data_dir) {
  namespace fs = std::filesystem;
  const fs::path dir = data_dir / "models" / kDemoModelName;
  std::error_code ec;
  // make_model writes the weights last, so a directory holding them is complete.
  if (fs::exists(dir / "model.safetensors", ec) && fs::exists(dir / "tokenizer.json", ec)) return dir;
  log_info("making the demo model (random weights, Llama 3 tokenizer) in ", dir.string(), "; this happens once");
  // Made in a temporary directory and renamed, so an interrupted run never leaves half a model.
  const fs::path tmp = data_dir / "models" / str_cat(".", kDemoModelName, ".partial");
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return unavailable(str_cat("cannot create ", tmp.string(), ": ", ec.message()));
  model::MakeModelOptions o;
  o.preset = "tiny-llama";
  o.out_dir = tmp;
  o.seed = 0;
  o.max_position_embeddings = 4096;  // keeps the CPU KV cache small
  model::MakeModelReport report;
  Status s = model::make_model(o, &report);
  if (!s.is_ok()) {
    fs::remove_all(tmp, ec);
    return s.with_context("making the demo model");
  }
  fs::remove_all(dir, ec);
  fs::rename(tmp, dir, ec);
  if (ec) return unavailable(str_cat("cannot move the demo model to ", dir.string(), ": ", ec.message()));
  log_info("demo model ready: ", report.num_parameters, " parameters, tokenizer from ", report.tokenizer_source.string());
  return dir;
}

}  // namespace kiln::pool
