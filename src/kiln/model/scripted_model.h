// Weights that make greedy decoding follow a script: after a given context (the end of a prompt),
// the model emits given token ids, then its end-of-sequence token. `kiln make-model --script`
// writes them, so that end-to-end tests can have a real model, through the real engine and
// server, produce exact tool-call and reasoning text (docs/tool-calling-api.md).
//
// The construction is an n-gram model built from one decoder layer (docs/tool-calling-api.md
// explains it in full): every token that occurs in a script gets a ±1 code of B bits (all other
// tokens share the all -1 code); the embedding holds a constant 1 and the token's code. Each
// attention head h = 1..N-1 looks exactly h tokens back: its query and key are constants whose
// RoPE rotations only line up at distance h (many frequencies make the peak sharp), and its value
// copies that token's code into a subspace of its own. One MLP neuron per step of a script fires
// when the codes of the last N tokens equal that step's context (a threshold just below the
// perfect match), and writes the code of the step's token into the residual; the tied lm_head
// reads codes, so argmax is that token. N is the smallest order under which no two steps with
// different next tokens share a context; a step whose context reaches past the known `after`
// text checks only the tokens it knows, and the more specific neuron outweighs a less specific
// one. Where no neuron fires, a constant neuron makes the first script's first token win.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/core/status.h"
#include "kiln/model/config.h"

namespace kiln::model {

struct ScriptSequence {
  std::vector<int32_t> after;  // what the prompt ends with (may be empty for one script)
  std::vector<int32_t> emit;   // what greedy decoding produces next, its end token included
};

struct ScriptedModel {
  int64_t order = 0;      // N: how many of the last tokens decide the next one
  int64_t code_bits = 0;  // B
  int64_t num_neurons = 0;
  // Dense values of every tensor except the embedding, by name (row-major, f32).
  std::vector<std::pair<std::string, std::vector<float>>> tensors;
  std::vector<int32_t> code_of;  // per vocabulary id: its code index (0: other)
};

// Sets the shape fields of `config` (hidden size, heads, head dims, one layer, tied embeddings,
// rope) for `scripts` and computes the weights. Fails when the scripts contradict each other
// under every order up to the limit (the same context followed by different tokens).
Result<ScriptedModel> build_scripted_model(const std::vector<ScriptSequence>& scripts, ModelConfig* config);

// Element `index` of tensor `name` (the embedding included) of a scripted model for `config`.
float scripted_weight(const ScriptedModel& m, const ModelConfig& config, const std::string& name, uint64_t index);

}  // namespace kiln::model
