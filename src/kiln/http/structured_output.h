// What a request constrains its output to: OpenAI's response_format, the structured_outputs
// extension (vLLM's names) and llama.cpp's top-level grammar / json_schema, parsed into the one
// grammar::GrammarSpec a request may carry (docs/structured-outputs.md). Only the parsing is here;
// the spec is compiled once the model is known (generation.cpp), through the server's GrammarCache.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "kiln/grammar/spec.h"
#include "kiln/http/errors.h"

namespace kiln::http {

struct StructuredOutput {
  grammar::GrammarSpec spec;
  std::string param;  // the field it came from, named by the 400 when it does not compile
};

// OpenAI's limit on response_format.json_schema.name (and its pattern, [a-zA-Z0-9_-]+).
inline constexpr size_t kMaxSchemaNameLength = 64;

// Reads the fields above from a request body; nullopt in *out when none constrains the output
// ({"type": "text"} does not). More than one is a 400, as is any malformed one.
std::optional<ApiError> parse_structured_output(const nlohmann::ordered_json& body,
                                                std::optional<StructuredOutput>* out);

}  // namespace kiln::http
