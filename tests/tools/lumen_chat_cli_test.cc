// `lumen chat --tools FILE` against a real lumend serving stories260K with
// Qwen2.5's chat template (Hermes tool calls): the call is printed on its
// own line with its arguments and id, the next stdin line goes back as the
// call's result and the model answers it; flag mistakes end before any RPC
// and the server's refusal of bad tools is printed.

#include <fstream>
#include <regex>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/daemon_process.h"
#include "tests/server/test_tools.h"
#include "tests/test_support.h"

namespace lumen {
namespace {

using testing::BinPath;
using testing::DaemonProcess;
using ::testing::HasSubstr;
using testing::RunCommand;
using Json = nlohmann::json;

// The tools the chat sessions offer.
std::string ToolsJson() {
  return testing::TestTools({"get_weather", "add"}).dump();
}

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = testing::MakeTempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos;
       at = text.find(what, at + what.size())) {
    ++n;
  }
  return n;
}

class LumenChatCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new DaemonProcess(
        {"--model=" + testing::TestDataPath("models/stories260K.gguf"),
         "--ctx-size=2048", "--kv-cache-mb=32", "--threads=1",
         "--chat-template=" + testing::TestDataPath(
                                  "templates/Qwen-Qwen2.5-7B-Instruct.jinja")});
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(daemon_->ok()) << daemon_->Log(); }

  static testing::CommandResult Chat(const std::string& args,
                                     const std::string& input) {
    return RunCommand(absl::StrCat(BinPath("lumen"), " chat --addr ",
                                   daemon_->address(), " ", args),
                      input);
  }
  static DaemonProcess* daemon_;
};
DaemonProcess* LumenChatCliTest::daemon_ = nullptr;

TEST_F(LumenChatCliTest, ToolCallRoundTrip) {
  const std::string tools = WriteFile("tools.json", ToolsJson());
  for (const char* choice : {"required", "get_weather"}) {
    SCOPED_TRACE(choice);
    // The question, then the call's result.
    auto r = Chat(absl::StrCat("--tools ", tools, " --tool-choice ", choice,
                               " --no-parallel-tool-calls --temperature 1 "
                               "--seed 3 --max-tokens 200"),
                  "What is the weather in Paris?\n18 degrees\n");
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    std::smatch m;
    ASSERT_TRUE(
        std::regex_search(r.out, m,
                          std::regex("(^|\n)tool call (\\w+) \\(id "
                                     "(call_[A-Za-z0-9]{24})\\) (\\{.*\\})\n")))
        << r.out;
    const std::string name = m[2], id = m[3];
    if (std::string(choice) == "get_weather") {
      EXPECT_EQ(name, "get_weather");
    }
    const Json arguments = Json::parse(m[4].str(), nullptr, false);
    ASSERT_TRUE(arguments.is_object()) << r.out;
    if (name == "get_weather") {
      ASSERT_TRUE(arguments["city"].is_string()) << arguments;
      const size_t length = arguments["city"].get<std::string>().size();
      EXPECT_GE(length, 1u);
      EXPECT_LE(length, 12u * 4);  // characters, up to 4 bytes each
      EXPECT_TRUE(arguments["unit"] == "celsius" ||
                  arguments["unit"] == "fahrenheit")
          << arguments;
      EXPECT_EQ(arguments.size(), 2u);
    } else {
      ASSERT_EQ(name, "add");
      EXPECT_TRUE(arguments["a"].is_number_integer()) << arguments;
      EXPECT_TRUE(arguments["b"].is_number_integer()) << arguments;
    }
    // The result was asked for that call, and the model was asked again
    // (tool_choice auto now): it answered in text, and the next prompt for
    // a turn came, or it called again and asked for that result.
    EXPECT_THAT(r.err,
                HasSubstr(absl::StrCat("result of ", name, " (", id, ")> ")));
    EXPECT_EQ(Count(r.out, "tool call "), Count(r.err, "result of "))
        << r.out << r.err;
    EXPECT_GE(Count(r.err, "> "), 3) << r.err;
  }
}

TEST_F(LumenChatCliTest, ServerRefusalOfBadToolsIsPrinted) {
  const std::string tools =
      WriteFile("bad.json", R"([{"type": "code_interpreter"}])");
  auto r = Chat("--tools " + tools, "hello\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("lumen: INVALID_ARGUMENT: tools[0].type"));
  const std::string good = WriteFile("tools.json", ToolsJson());
  auto unknown = Chat("--tools " + good + " --tool-choice nope", "hello\n");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("'nope' is not one of the tools"));
}

// Flag errors end before any RPC: the address points at nothing.
TEST(LumenChatCliFlagsTest, ToolFlagsNeedAReadableToolsFile) {
  const std::string lumen = BinPath("lumen");
  auto help = RunCommand(lumen + " chat --help");
  ASSERT_EQ(help.exit_code, 0) << help.err;
  EXPECT_THAT(help.out, HasSubstr("--tools"));
  EXPECT_THAT(help.out, HasSubstr("--tool-choice"));
  auto lonely =
      RunCommand(lumen + " chat --addr 127.0.0.1:1 --tool-choice required", "");
  EXPECT_EQ(lonely.exit_code, 2);
  EXPECT_EQ(lonely.err,
            "lumen: --tool-choice and --no-parallel-tool-calls need --tools\n");
  const std::string missing = testing::MakeTempDir() + "/missing.json";
  auto unreadable =
      RunCommand(lumen + " chat --addr 127.0.0.1:1 --tools " + missing, "");
  EXPECT_EQ(unreadable.exit_code, 1);
  EXPECT_EQ(unreadable.err, "lumen: --tools: cannot read '" + missing +
                                "': No such file or directory\n");
}

}  // namespace
}  // namespace lumen
