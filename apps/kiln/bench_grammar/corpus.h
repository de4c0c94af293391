// JSONSchemaBench-format corpus files (`kiln bench grammar` and the grammar tests): reading them,
// and writing a test instance the way kiln's JSON Schema grammar writes it (compact, object keys
// in the schema's declared property order).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::grammar::corpus {

struct CorpusCase {
  std::string name;
  std::string schema_text;
  nlohmann::ordered_json schema;
  struct Instance {
    bool valid = false;
    std::string text;  // compact, keys in declared order
  };
  std::vector<Instance> instances;
};

// Every *.json file of `dir`, sorted by name. Files that are not JSON are skipped.
std::vector<CorpusCase> read_corpus(const std::filesystem::path& dir);

// `instance` with every object's keys in the order the schema declares them (following $ref,
// allOf, anyOf and oneOf), undeclared keys after them in their own order; serialized compactly.
std::string declared_order_text(const nlohmann::ordered_json& schema, const nlohmann::ordered_json& instance);

}  // namespace kiln::grammar::corpus
