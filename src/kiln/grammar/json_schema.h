// JSON Schema (draft 2020-12, the subset OpenAI structured outputs and llguidance accept) to a
// Grammar. Fails closed: a keyword or construct that cannot be enforced is an kInvalidArgument
// naming it (with its JSON pointer), never ignored.
#pragma once

#include <string_view>

#include "kiln/core/status.h"
#include "kiln/grammar/grammar.h"

namespace kiln::grammar {

struct JsonSchemaOptions {
  // Whitespace between JSON tokens: compact (none, as OpenAI) or flexible (any JSON whitespace,
  // bounded by max_whitespace per gap).
  bool compact_whitespace = true;
  uint32_t max_whitespace = 20;
  // Objects: whether properties the schema does not name are allowed when the schema says nothing
  // (additionalProperties absent). OpenAI strict mode forbids them; JSON Schema allows them.
  bool default_additional_properties = true;
};

// `schema_json` is the schema's JSON text (the http layer passes it on; no JSON library type
// crosses below http/).
Result<Grammar> json_schema_grammar(std::string_view schema_json, const JsonSchemaOptions& options);
// Any JSON object (response_format json_object).
Result<Grammar> json_object_grammar(const JsonSchemaOptions& options);

}  // namespace kiln::grammar
