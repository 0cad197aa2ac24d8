// The 16 real chat templates x 7 conversations of
// ../shared/testdata/templates/expected.json, rendered by Python's jinja2
// 3.1.6 with Hugging Face's settings: every rendering byte-equal, every
// raise_exception error with the template's own message.

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "chat/jinja/builtins.h"
#include "chat/jinja/template.h"
#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::chat::jinja {
namespace {

struct CorpusCase {
  std::string template_file;
  std::string conversation;
  std::string test_name;
};

Json LoadExpected() {
  const std::string text =
      testing::ReadFile(testing::TestDataPath("templates/expected.json"));
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? Json::object() : j;
}

const Json& Expected() {
  static const Json* expected = new Json(LoadExpected());
  return *expected;
}

std::vector<CorpusCase> Cases() {
  std::vector<CorpusCase> cases;
  const Json& e = Expected();
  if (!e.contains("templates")) return cases;
  for (auto t = e["templates"].begin(); t != e["templates"].end(); ++t) {
    for (auto c = (*t)["renderings"].begin(); c != (*t)["renderings"].end();
         ++c) {
      std::string name = t.key().substr(0, t.key().size() - 6) + "__" + c.key();
      for (char& ch : name)
        if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
      cases.push_back({t.key(), c.key(), name});
    }
  }
  return cases;
}

// The variables transformers' apply_chat_template passes (README.md).
Json Variables(const Json& conversation, const Json& template_entry) {
  Json vars = Json::object();
  vars["messages"] = conversation["messages"];
  if (conversation.contains("tools")) vars["tools"] = conversation["tools"];
  vars["add_generation_prompt"] =
      conversation.value("add_generation_prompt", true);
  vars["bos_token"] = template_entry["bos_token"];
  vars["eos_token"] = template_entry["eos_token"];
  return vars;
}

RenderOptions FixedClock() {
  RenderOptions o;
  o.now = absl::FromCivil(absl::CivilSecond(2026, 11, 28, 12, 0, 0),
                          absl::UTCTimeZone());
  o.time_zone = absl::UTCTimeZone();
  return o;
}

class TemplateCorpusTest : public ::testing::TestWithParam<CorpusCase> {};

TEST_P(TemplateCorpusTest, RendersLikeJinja2) {
  const CorpusCase& c = GetParam();
  const std::string source =
      testing::ReadFile(testing::TestDataPath("templates/" + c.template_file));
  ASSERT_FALSE(source.empty()) << c.template_file;
  auto tmpl = Template::Compile(source);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status();
  const Json& entry = Expected()["templates"][c.template_file];
  const Json& expected = entry["renderings"][c.conversation];
  const Json vars =
      Variables(Expected()["conversations"][c.conversation], entry);
  absl::StatusOr<std::string> text = (*tmpl)->Render(vars, FixedClock());
  if (expected.contains("error")) {
    ASSERT_FALSE(text.ok())
        << "expected " << expected["error"] << ", rendered:\n"
        << *text;
    EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(IsRaisedError(text.status())) << text.status();
    EXPECT_EQ("TemplateError: " + std::string(text.status().message()),
              expected["error"].get<std::string>());
  } else {
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, expected["text"].get<std::string>());
  }
}

INSTANTIATE_TEST_SUITE_P(Expected, TemplateCorpusTest,
                         ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<CorpusCase>& info) {
                           return info.param.test_name;
                         });

TEST(TemplateCorpus, HasAll112Cases) {
  EXPECT_EQ(Cases().size(), 112u)
      << "../shared/testdata/templates/expected.json missing or changed";
}

}  // namespace
}  // namespace lumen::chat::jinja
