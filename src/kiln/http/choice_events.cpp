#include "kiln/http/choice_events.h"

namespace kiln::http {

int ChoiceEvents::add(std::vector<text::OutputEvent>& events, bool streaming, size_t max_calls) {
  using K = text::OutputEvent::Kind;
  int ended = 0;
  for (auto& e : events) {
    auto pend = [&](Piece::Kind kind, std::string text, int index) {
      if (streaming) pending_.push_back({kind, std::move(text), index});
    };
    switch (e.kind) {
      case K::kContent:
        content_ += e.text;
        pend(Piece::Kind::kContent, std::move(e.text), 0);
        break;
      case K::kReasoning:
        reasoning_ += e.text;
        pend(Piece::Kind::kReasoning, std::move(e.text), 0);
        break;
      case K::kToolCallBegin: {
        if (e.index < 0 || e.index > 4096 || calls_.size() >= max_calls) break;  // a parser's index is small and dense
        if (call_of_index_.size() <= static_cast<size_t>(e.index)) call_of_index_.resize(static_cast<size_t>(e.index) + 1, -1);
        call_of_index_[static_cast<size_t>(e.index)] = static_cast<int>(calls_.size());
        calls_.push_back({e.id.empty() ? make_tool_call_id() : e.id, e.name, ""});
        pend(Piece::Kind::kCallOpen, "", static_cast<int>(calls_.size()) - 1);
        break;
      }
      case K::kToolCallArguments: {
        if (e.index < 0 || static_cast<size_t>(e.index) >= call_of_index_.size()) break;
        const int c = call_of_index_[static_cast<size_t>(e.index)];
        if (c < 0) break;
        calls_[static_cast<size_t>(c)].arguments += e.text;
        pend(Piece::Kind::kCallArguments, std::move(e.text), c);
        break;
      }
      case K::kToolCallEnd:
        if (e.index < 0 || static_cast<size_t>(e.index) >= call_of_index_.size() || call_of_index_[static_cast<size_t>(e.index)] < 0) break;
        ++ended_;
        ++ended;
        break;
    }
  }
  return ended;
}

std::vector<ChoiceDelta> ChoiceEvents::take_deltas(int index) {
  std::vector<ChoiceDelta> out;
  const Piece* prev = nullptr;
  for (const Piece& p : pending_) {
    const bool same = prev != nullptr && prev->kind == p.kind && p.kind != Piece::Kind::kCallOpen &&
                      (p.kind != Piece::Kind::kCallArguments || prev->index == p.index);
    // As OpenAI streams: a call opens with arguments "", then its argument fragments follow.
    if (same) {
      ChoiceDelta& d = out.back();
      if (p.kind == Piece::Kind::kContent) *d.text += p.text;
      else if (p.kind == Piece::Kind::kReasoning) *d.reasoning += p.text;
      else d.tool_calls.back().arguments += p.text;
      continue;
    }
    ChoiceDelta d;
    d.index = index;
    switch (p.kind) {
      case Piece::Kind::kContent: d.text = p.text; break;
      case Piece::Kind::kReasoning: d.reasoning = p.text; break;
      case Piece::Kind::kCallOpen: {
        const ToolCallOut& c = calls_[static_cast<size_t>(p.index)];
        d.tool_calls.push_back({p.index, true, c.id, c.name, ""});
        break;
      }
      case Piece::Kind::kCallArguments: d.tool_calls.push_back({p.index, false, "", "", p.text}); break;
    }
    out.push_back(std::move(d));
    prev = &p;
  }
  pending_.clear();
  return out;
}

std::string make_tool_call_id() { return "call_" + make_completion_id(""); }

}  // namespace kiln::http
