// Small templates, one feature each (whitespace control, literals, operators, filters, tests,
// methods, loops, macros, namespaces, errors), against Python jinja2's output.
#include <gtest/gtest.h>

#include "jinja_fixture_util.h"
#include "kiln/text/jinja/template.h"

namespace kiln::text::jinja {
namespace {

using kiln::text::testing::OrderedJson;

TEST(JinjaSnippets, MatchPythonJinja2) {
  OrderedJson snippets = kiln::text::testing::read_json(kiln::text::testing::fixture_dir() / "snippets.json");
  ASSERT_TRUE(snippets.is_array()) << "missing snippets.json (run tools/make_template_fixtures.py)";
  ASSERT_GT(snippets.size(), 50u);
  int failures = 0;
  for (const auto& s : snippets) {
    std::string source = s["template"].get<std::string>();
    auto t = Template::parse(source);
    if (s.contains("load_error")) {
      EXPECT_FALSE(t.is_ok()) << source;
      continue;
    }
    if (!t.is_ok()) {
      ADD_FAILURE() << source << "\n  load failed: " << t.status().to_string();
      ++failures;
      continue;
    }
    DictData context;
    for (const auto& [k, v] : s["context"].items()) context.set(Value(k), kiln::text::testing::to_value(v));
    RenderOptions options;
    options.now = [] { return kiln::text::testing::kFixedNow; };
    RenderFailure failure;
    auto out = t->render(context, options, &failure);
    if (s.contains("output")) {
      if (!out.is_ok()) {
        ADD_FAILURE() << source << "\n  expected: " << s["output"].get<std::string>() << "\n  error: " << out.status().to_string();
        ++failures;
      } else if (*out != s["output"].get<std::string>()) {
        ADD_FAILURE() << source << "\n  expected: " << s["output"].get<std::string>() << "\n  got:      " << *out;
        ++failures;
      }
    } else {
      if (out.is_ok()) {
        ADD_FAILURE() << source << "\n  expected error " << s["error"].dump() << "\n  got: " << *out;
        ++failures;
        continue;
      }
      if (s["error"]["type"] == "TemplateError") {
        EXPECT_EQ(failure.kind, RenderError::Kind::kRaised) << source;
        EXPECT_EQ(out.status().message(), s["error"]["message"].get<std::string>()) << source;
      }
    }
  }
  EXPECT_EQ(failures, 0);
}

}  // namespace
}  // namespace kiln::text::jinja
