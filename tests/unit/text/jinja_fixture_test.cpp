// Every real chat template in tests/fixtures/templates, over every conversation in
// conversations.json, must render byte for byte as Python jinja2 did (or fail as it did:
// raise_exception messages verbatim, other errors as errors).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "jinja_fixture_util.h"
#include "kiln/text/chat_template.h"

namespace kiln::text {
namespace {

using testing::OrderedJson;

std::vector<std::string> template_fixtures() {
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(testing::fixture_dir()))
    if (e.path().extension() == ".jinja") names.insert(e.path().stem().string());
  return {names.begin(), names.end()};
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string out;
  for (char c : info.param) out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return out;
}

class TemplateFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(TemplateFixture, RendersLikePythonJinja2) {
  const std::string& name = GetParam();
  OrderedJson fixture = testing::read_json(testing::fixture_dir() / (name + ".json"));
  ASSERT_TRUE(fixture.is_object()) << "missing fixture " << name << ".json (run tools/make_template_fixtures.py)";
  OrderedJson conversations = testing::read_json(testing::fixture_dir() / "conversations.json");
  ASSERT_TRUE(conversations.is_array());
  std::map<std::string, OrderedJson> by_name;
  for (const auto& c : conversations) by_name[c["name"].get<std::string>()] = c;

  auto source = read_file(testing::fixture_dir() / (name + ".jinja"));
  ASSERT_TRUE(source.is_ok());
  std::vector<std::pair<std::string, jinja::Value>> special;
  for (const auto& [k, v] : fixture["special_tokens"].items()) special.emplace_back(k, testing::to_value(v));
  auto ct = ChatTemplate::from_source(*source, special);
  if (fixture.contains("load_error")) {
    EXPECT_FALSE(ct.is_ok()) << "Python could not load it: " << fixture["load_error"].dump();
    if (!ct.is_ok()) {
      EXPECT_NE(ct.status().message().find("line "), std::string::npos) << ct.status().message();
    }
    return;
  }
  ASSERT_TRUE(ct.is_ok()) << ct.status().to_string();

  int checked = 0;
  for (const auto& c : fixture["cases"]) {
    const OrderedJson& conv = by_name.at(c["conversation"].get<std::string>());
    ChatTemplateInput in;
    in.messages = testing::to_value(conv["messages"]);
    if (conv.contains("tools")) in.tools = testing::to_value(conv["tools"]);
    in.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    if (conv.contains("kwargs"))
      for (const auto& [k, v] : conv["kwargs"].items()) in.kwargs.emplace_back(k, testing::to_value(v));
    in.now = [] { return testing::kFixedNow; };
    bool raised = false;
    auto out = ct->render(in, &raised);
    std::string where = c["conversation"].get<std::string>() + (in.add_generation_prompt ? " +gen" : "");
    if (c.contains("output")) {
      ASSERT_TRUE(out.is_ok()) << where << ": " << out.status().to_string();
      ASSERT_EQ(*out, c["output"].get<std::string>()) << where;
    } else {
      ASSERT_FALSE(out.is_ok()) << where << ": Python failed with " << c["error"].dump() << " but kiln rendered:\n"
                                << *out;
      bool python_raised = c["error"]["type"] == "TemplateError";
      EXPECT_EQ(raised, python_raised) << where << ": " << out.status().to_string() << " vs " << c["error"].dump();
      if (python_raised) {
        EXPECT_EQ(out.status().message(), c["error"]["message"].get<std::string>()) << where;
      }
    }
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

INSTANTIATE_TEST_SUITE_P(Templates, TemplateFixture, ::testing::ValuesIn(template_fixtures()), test_name);

TEST(TemplateFixtures, CoverAtLeastTwentyFiveTemplates) { EXPECT_GE(template_fixtures().size(), 25u); }

}  // namespace
}  // namespace kiln::text
