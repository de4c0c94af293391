// Internal to model/config*.cpp: typed reads of config.json fields with errors that name the file
// and the field.
#pragma once

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/core/status.h"
#include "kiln/core/str.h"
#include "kiln/model/config.h"

namespace kiln::model::internal {

using nlohmann::json;

// Typed reads of one JSON object's fields. A missing or null field leaves the output untouched
// (the caller has already put transformers' default there); a field of the wrong type is an error
// naming the file and the field.
class Fields {
 public:
  Fields(const json& obj, std::string_view source, std::string prefix = "")
      : obj_(obj), source_(source), prefix_(std::move(prefix)) {}

  bool present(const char* key) const {
    auto it = obj_.find(key);
    return it != obj_.end() && !it->is_null();
  }

  std::string name(const char* key) const { return prefix_ + key; }

  const json& value(const char* key) const { return obj_.at(key); }

  Status error(const char* key, std::string_view what) const {
    return invalid_argument(str_cat(source_, ": field '", name(key), "' ", what));
  }

  Status get_int(const char* key, int64_t* out) const {
    if (!present(key)) return Status::ok();
    const json& v = obj_.at(key);
    if (v.is_number_integer()) {
      if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return error(key, str_cat("is too large: ", v.dump()));
      }
      *out = v.get<int64_t>();
      return Status::ok();
    }
    if (v.is_number_float()) {  // 4096.0 is an integer too
      double d = v.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
        *out = static_cast<int64_t>(d);
        return Status::ok();
      }
    }
    return error(key, str_cat("must be an integer, got ", v.dump()));
  }

  Status get_double(const char* key, double* out) const {
    if (!present(key)) return Status::ok();
    const json& v = obj_.at(key);
    if (!v.is_number()) return error(key, str_cat("must be a number, got ", v.dump()));
    *out = v.get<double>();
    return Status::ok();
  }

  Status get_optional_double(const char* key, std::optional<double>* out) const {
    if (!present(key)) return Status::ok();
    double d = 0;
    KILN_RETURN_IF_ERROR(get_double(key, &d));
    *out = d;
    return Status::ok();
  }

  Status get_bool(const char* key, bool* out) const {
    if (!present(key)) return Status::ok();
    const json& v = obj_.at(key);
    if (!v.is_boolean()) return error(key, str_cat("must be true or false, got ", v.dump()));
    *out = v.get<bool>();
    return Status::ok();
  }

  Status get_string(const char* key, std::string* out) const {
    if (!present(key)) return Status::ok();
    const json& v = obj_.at(key);
    if (!v.is_string()) return error(key, str_cat("must be a string, got ", v.dump()));
    *out = v.get<std::string>();
    return Status::ok();
  }

  // A token id field: an integer, a list of integers, or null (no tokens).
  Status get_token_ids(const char* key, std::vector<int32_t>* out) const {
    auto it = obj_.find(key);
    if (it == obj_.end()) return Status::ok();
    out->clear();
    if (it->is_null()) return Status::ok();
    auto one = [&](const json& v) -> Status {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
        return error(key, str_cat("must hold non-negative 32-bit token ids, got ", v.dump()));
      }
      out->push_back(static_cast<int32_t>(v.get<int64_t>()));
      return Status::ok();
    };
    if (it->is_array()) {
      for (const json& v : *it) KILN_RETURN_IF_ERROR(one(v));
      return Status::ok();
    }
    return one(*it);
  }

 private:
  const json& obj_;
  std::string_view source_;
  std::string prefix_;
};

// Per-architecture parts of config.json for the mixture-of-experts and Gemma 3 families
// (config_arch.cpp), called by parse_model_config, validate_model_config and model_config_to_json.
void set_arch_defaults(ModelConfig* c);  // transformers' constructor defaults of the family
Status parse_moe_fields(const Fields& f, ModelConfig* c);
Status parse_gemma3_activation(const Fields& f, std::string_view source);
Status parse_gemma3_fields(const json& j, const Fields& f, ModelConfig* c);
Status validate_arch_fields(const ModelConfig& c, std::string_view source);
void arch_fields_to_json(const ModelConfig& c, json* j);

}  // namespace kiln::model::internal
