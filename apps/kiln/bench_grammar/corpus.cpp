#include "bench_grammar/corpus.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace kiln::grammar::corpus {

using nlohmann::ordered_json;

namespace {

const ordered_json* resolve(const ordered_json& root, const std::string& ref) {
  if (ref.empty() || ref[0] != '#') return nullptr;
  if (ref == "#") return &root;
  try {
    std::string ptr = ref.substr(1);
    std::string decoded;
    for (size_t i = 0; i < ptr.size(); ++i) {
      if (ptr[i] == '%' && i + 2 < ptr.size()) {
        decoded += static_cast<char>(std::stoi(ptr.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        decoded += ptr[i];
      }
    }
    const ordered_json& target = root.at(ordered_json::json_pointer(decoded));
    return &target;
  } catch (...) {
    return nullptr;
  }
}

void expand(const ordered_json& root, const ordered_json* s, const ordered_json& v, std::vector<const ordered_json*>& out,
            std::set<const ordered_json*>& seen, int depth);

// How well an anyOf/oneOf option fits an object instance: its keys the option declares, less the
// option's required keys the instance lacks.
int fit(const ordered_json& root, const ordered_json* option, const ordered_json& v) {
  std::vector<const ordered_json*> nodes;
  std::set<const ordered_json*> seen;
  expand(root, option, v, nodes, seen, 0);
  int score = 0;
  for (const ordered_json* n : nodes) {
    if (auto props = n->find("properties"); props != n->end() && props->is_object()) {
      for (const auto& [k, _] : v.items()) score += props->contains(k) ? 1 : 0;
    }
    if (auto req = n->find("required"); req != n->end() && req->is_array()) {
      for (const auto& k : *req) score -= k.is_string() && !v.contains(k.get<std::string>()) ? 1 : 0;
    }
  }
  return score;
}

// The schema nodes that apply to one instance, in the order kiln merges them: a $ref's target,
// allOf's branches and the node itself; anyOf/oneOf options (the one that fits the instance best)
// come after all of those, as kiln merges an option after the schema around it.
void expand_plain(const ordered_json& root, const ordered_json* s, std::vector<const ordered_json*>& out,
                  std::vector<const ordered_json*>& choices, std::set<const ordered_json*>& seen, int depth) {
  if (s == nullptr || !s->is_object() || depth > 40 || !seen.insert(s).second) return;
  if (auto it = s->find("$ref"); it != s->end() && it->is_string()) expand_plain(root, resolve(root, *it), out, choices, seen, depth + 1);
  if (auto it = s->find("allOf"); it != s->end() && it->is_array()) {
    for (const auto& x : *it) expand_plain(root, &x, out, choices, seen, depth + 1);
  }
  out.push_back(s);
  for (const char* k : {"anyOf", "oneOf"}) {
    if (auto it = s->find(k); it != s->end() && it->is_array() && !it->empty()) choices.push_back(&*it);
  }
}

void expand(const ordered_json& root, const ordered_json* s, const ordered_json& v, std::vector<const ordered_json*>& out,
            std::set<const ordered_json*>& seen, int depth) {
  std::vector<const ordered_json*> choices;
  expand_plain(root, s, out, choices, seen, depth);
  for (size_t i = 0; i < choices.size() && i < 64; ++i) {
    const ordered_json& list = *choices[i];
    const ordered_json* best = &list[0];
    if (v.is_object()) {
      int best_fit = -1'000'000;
      for (const auto& x : list) {
        int f = fit(root, &x, v);
        if (f > best_fit) best_fit = f, best = &x;
      }
    }
    expand_plain(root, best, out, choices, seen, depth + 1);
  }
}

ordered_json reorder(const ordered_json& root, const std::vector<const ordered_json*>& schemas, const ordered_json& v,
                     int depth) {
  std::vector<const ordered_json*> nodes;
  std::set<const ordered_json*> seen;
  for (const ordered_json* s : schemas) expand(root, s, v, nodes, seen, 0);
  if (v.is_object()) {
    std::vector<std::string> order;
    for (const ordered_json* n : nodes) {
      if (auto it = n->find("properties"); it != n->end() && it->is_object()) {
        for (const auto& [k, _] : it->items()) {
          if (std::find(order.begin(), order.end(), k) == order.end()) order.push_back(k);
        }
      }
    }
    std::vector<std::string> keys;
    for (const auto& [k, _] : v.items()) keys.push_back(k);
    std::stable_sort(keys.begin(), keys.end(), [&](const std::string& a, const std::string& b) {
      auto ia = std::find(order.begin(), order.end(), a) - order.begin();
      auto ib = std::find(order.begin(), order.end(), b) - order.begin();
      return ia < ib;
    });
    ordered_json out = ordered_json::object();
    for (const std::string& k : keys) {
      std::vector<const ordered_json*> children;
      for (const ordered_json* n : nodes) {
        auto props = n->find("properties");
        if (props != n->end() && props->is_object() && props->contains(k)) {
          children.push_back(&(*props)[k]);
        } else if (auto addl = n->find("additionalProperties"); addl != n->end()) {
          children.push_back(&*addl);
        }
      }
      out[k] = depth > 60 ? v[k] : reorder(root, children, v[k], depth + 1);
    }
    return out;
  }
  if (v.is_array()) {
    ordered_json out = ordered_json::array();
    for (size_t i = 0; i < v.size(); ++i) {
      std::vector<const ordered_json*> children;
      for (const ordered_json* n : nodes) {
        auto prefix = n->find("prefixItems");
        auto items = n->find("items");
        if (prefix != n->end() && prefix->is_array() && i < prefix->size()) {
          children.push_back(&(*prefix)[i]);
        } else if (items != n->end() && items->is_array()) {
          if (i < items->size()) children.push_back(&(*items)[i]);
          else if (auto more = n->find("additionalItems"); more != n->end()) children.push_back(&*more);
        } else if (items != n->end()) {
          children.push_back(&*items);
        }
      }
      out.push_back(depth > 60 ? v[i] : reorder(root, children, v[i], depth + 1));
    }
    return out;
  }
  return v;
}

}  // namespace

std::string declared_order_text(const ordered_json& schema, const ordered_json& instance) {
  return reorder(schema, {&schema}, instance, 0).dump();
}

std::vector<CorpusCase> read_corpus(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<CorpusCase> out;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    ordered_json doc = ordered_json::parse(ss.str(), nullptr, false);
    if (doc.is_discarded() || !doc.contains("schema")) continue;
    CorpusCase c;
    c.name = f.filename().string();
    c.schema = doc["schema"];
    c.schema_text = c.schema.dump();
    if (doc.contains("tests") && doc["tests"].is_array()) {
      for (const auto& t : doc["tests"]) {
        if (!t.contains("data")) continue;
        c.instances.push_back({t.value("valid", false), declared_order_text(c.schema, t["data"])});
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace kiln::grammar::corpus
