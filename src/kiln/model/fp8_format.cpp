#include "kiln/model/fp8_format.h"

#include <regex>

#include <nlohmann/json.hpp>

#include "kiln/core/str.h"

namespace kiln::model {
namespace {

using nlohmann::json;

Status bad(std::string_view source, std::string_view field, std::string_view what) {
  return invalid_argument(str_cat(source, ": quantization_config.", field, " ", what));
}

Status unsupported(std::string_view source, std::string_view field, std::string_view what) {
  return unimplemented(str_cat(source, ": quantization_config.", field, " ", what));
}

Result<std::string> string_field(const json& o, const char* key, std::string_view source, std::string_view path) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::string();
  if (!it->is_string()) return bad(source, str_cat(path, key), str_cat("must be a string, got ", it->dump()));
  return it->get<std::string>();
}

Status string_list(const json& o, const char* key, std::string_view source, std::vector<std::string>* out) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return Status::ok();
  if (!it->is_array()) return bad(source, key, "must be a list of module names");
  for (const json& v : *it) {
    if (!v.is_string()) return bad(source, key, str_cat("must hold strings, got ", v.dump()));
    out->push_back(v.get<std::string>());
  }
  return Status::ok();
}

// A [rows, cols] block size from a JSON pair; both must be positive integers.
Status block_size(const json& v, std::string_view source, std::string_view field, QuantizationConfig* q) {
  if (!v.is_array() || v.size() != 2 || !v[0].is_number_integer() || !v[1].is_number_integer() ||
      v[0].get<int64_t>() <= 0 || v[1].get<int64_t>() <= 0)
    return bad(source, field, str_cat("must be two positive integers, got ", v.dump()));
  q->scaling = Fp8Scaling::kBlock;
  q->block_rows = v[0].get<int64_t>();
  q->block_cols = v[1].get<int64_t>();
  return Status::ok();
}

Status parse_fp8(const json& o, std::string_view source, QuantizationConfig* q) {
  q->layout = Fp8Layout::kFp8;
  KILN_ASSIGN_OR_RETURN(std::string fmt, string_field(o, "fmt", source, ""));
  if (!fmt.empty() && fmt != "e4m3") return unsupported(source, "fmt", str_cat("'", fmt, "': kiln reads e4m3 only"));
  KILN_ASSIGN_OR_RETURN(std::string scheme, string_field(o, "activation_scheme", source, ""));
  if (!scheme.empty() && scheme != "dynamic" && scheme != "static")
    return bad(source, "activation_scheme", str_cat("'", scheme, "' is neither dynamic nor static"));
  q->scaling = Fp8Scaling::kTensor;
  auto it = o.find("weight_block_size");
  if (it != o.end() && !it->is_null()) KILN_RETURN_IF_ERROR(block_size(*it, source, "weight_block_size", q));
  q->ignore_by_substring = true;
  return string_list(o, "modules_to_not_convert", source, &q->ignore);
}

Status parse_compressed_tensors(const json& o, std::string_view source, QuantizationConfig* q) {
  q->layout = Fp8Layout::kCompressedTensors;
  KILN_ASSIGN_OR_RETURN(std::string format, string_field(o, "format", source, ""));
  auto groups = o.find("config_groups");
  if (groups == o.end() || !groups->is_object() || groups->size() != 1)
    return unsupported(source, "config_groups", "must hold exactly one group (kiln reads one scheme for all linear layers)");
  const auto group = groups->begin();
  const json& g = group.value();
  const std::string gp = str_cat("config_groups.", group.key(), ".");
  if (!g.is_object()) return bad(source, gp, "must be an object");
  KILN_ASSIGN_OR_RETURN(std::string gformat, string_field(g, "format", source, gp));
  if (!gformat.empty()) format = gformat;
  if (format != "float-quantized")
    return unsupported(source, "format", str_cat("'", format, "': kiln reads compressed-tensors 'float-quantized' (FP8)"));
  auto w = g.find("weights");
  if (w == g.end() || !w->is_object()) return bad(source, gp + "weights", "is missing");
  KILN_ASSIGN_OR_RETURN(std::string type, string_field(*w, "type", source, gp + "weights."));
  const auto bits = w->find("num_bits");
  if (type != "float" || bits == w->end() || !bits->is_number_integer() || bits->get<int>() != 8)
    return unsupported(source, gp + "weights", "must be 8-bit float (FP8) weights");
  KILN_ASSIGN_OR_RETURN(std::string strategy, string_field(*w, "strategy", source, gp + "weights."));
  if (strategy == "channel") q->scaling = Fp8Scaling::kChannel;
  else if (strategy == "tensor") q->scaling = Fp8Scaling::kTensor;
  else if (strategy == "block") {
    auto b = w->find("block_structure");
    if (b == w->end()) return bad(source, gp + "weights.block_structure", "is missing");
    KILN_RETURN_IF_ERROR(block_size(*b, source, gp + "weights.block_structure", q));
  } else {
    return unsupported(source, gp + "weights.strategy", str_cat("'", strategy, "': kiln reads channel, tensor and block"));
  }
  auto a = g.find("input_activations");
  if (a != g.end() && a->is_object()) {
    KILN_ASSIGN_OR_RETURN(std::string atype, string_field(*a, "type", source, gp + "input_activations."));
    if (!atype.empty() && atype != "float")
      return unsupported(source, gp + "input_activations.type", str_cat("'", atype, "': kiln quantizes activations to FP8"));
  }
  q->ignore_by_substring = false;
  return string_list(o, "ignore", source, &q->ignore);
}

}  // namespace

bool QuantizationConfig::covers(std::string_view module) const {
  if (!quantized()) return false;
  for (const std::string& e : ignore) {
    if (ignore_by_substring) {
      if (module.find(e) != std::string_view::npos) return false;
    } else if (e.rfind("re:", 0) == 0) {
      // A bad pattern was rejected when the config was read, so this cannot throw.
      if (std::regex_match(module.begin(), module.end(), std::regex(e.substr(3)))) return false;
    } else if (module == e) {
      return false;
    }
  }
  return true;
}

std::string QuantizationConfig::scale_name(std::string_view module) const {
  return str_cat(module, layout == Fp8Layout::kFp8 ? ".weight_scale_inv" : ".weight_scale");
}

std::vector<int64_t> QuantizationConfig::scale_shape(int64_t out, int64_t in) const {
  switch (scaling) {
    case Fp8Scaling::kBlock: return {(out + block_rows - 1) / block_rows, (in + block_cols - 1) / block_cols};
    case Fp8Scaling::kChannel: return {out, 1};
    case Fp8Scaling::kTensor: return {};
    case Fp8Scaling::kNone: break;
  }
  return {};
}

Result<QuantizationConfig> parse_quantization_config(std::string_view json_text, std::string_view source) {
  json o = json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (o.is_discarded() || !o.is_object()) return invalid_argument(str_cat(source, ": quantization_config must be an object"));
  QuantizationConfig q;
  KILN_ASSIGN_OR_RETURN(std::string method, string_field(o, "quant_method", source, ""));
  if (method == "fp8") KILN_RETURN_IF_ERROR(parse_fp8(o, source, &q));
  else if (method == "compressed-tensors") KILN_RETURN_IF_ERROR(parse_compressed_tensors(o, source, &q));
  else
    return unsupported(source, "quant_method",
                       str_cat("'", method, "': kiln reads FP8 checkpoints ('fp8', 'compressed-tensors')"));
  for (const std::string& e : q.ignore) {
    if (q.ignore_by_substring || e.rfind("re:", 0) != 0) continue;
    try {
      std::regex check(e.substr(3));
    } catch (const std::regex_error&) {
      return bad(source, "ignore", str_cat("holds '", e, "', which is not a valid regular expression"));
    }
  }
  return q;
}

std::string quantization_config_to_json(const QuantizationConfig& q) {
  if (!q.quantized() || q.quantize_at_load) return "";
  json o = json::object();
  if (q.layout == Fp8Layout::kFp8) {
    o["quant_method"] = "fp8";
    o["fmt"] = "e4m3";
    o["activation_scheme"] = "dynamic";
    if (q.scaling == Fp8Scaling::kBlock) o["weight_block_size"] = json::array({q.block_rows, q.block_cols});
    if (!q.ignore.empty()) o["modules_to_not_convert"] = q.ignore;
    return o.dump();
  }
  json weights = {{"num_bits", 8}, {"type", "float"}, {"symmetric", true}, {"dynamic", false}};
  switch (q.scaling) {
    case Fp8Scaling::kChannel: weights["strategy"] = "channel"; break;
    case Fp8Scaling::kTensor: weights["strategy"] = "tensor"; break;
    default:
      weights["strategy"] = "block";
      weights["block_structure"] = json::array({q.block_rows, q.block_cols});
  }
  json acts = {{"num_bits", 8}, {"type", "float"}, {"symmetric", true}, {"dynamic", true}, {"strategy", "token"}};
  o["quant_method"] = "compressed-tensors";
  o["format"] = "float-quantized";
  o["quantization_status"] = "compressed";
  o["ignore"] = q.ignore;
  o["config_groups"] = {{"group_0", {{"targets", json::array({"Linear"})}, {"weights", weights},
                                      {"input_activations", acts}, {"output_activations", nullptr}}}};
  return o.dump();
}

QuantizationConfig fp8_block_config() {
  QuantizationConfig q;
  q.scaling = Fp8Scaling::kBlock;
  q.layout = Fp8Layout::kFp8;
  q.ignore_by_substring = true;
  return q;
}

QuantizationConfig fp8_channel_config() {
  QuantizationConfig q;
  q.scaling = Fp8Scaling::kChannel;
  q.layout = Fp8Layout::kCompressedTensors;
  q.ignore = {"lm_head"};
  return q;
}

}  // namespace kiln::model
