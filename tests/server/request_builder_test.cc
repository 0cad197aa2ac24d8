// The pure front-end request path (server/request_builder.h) and the
// server's executor, without a daemon.

#include "server/request_builder.h"

#include <atomic>
#include <memory>

#include "absl/synchronization/notification.h"
#include "engine/gguf/gguf_file.h"
#include "gtest/gtest.h"
#include "server/executor.h"
#include "tests/test_support.h"

namespace lumen::server {
namespace {

using ::testing::HasSubstr;
using v1::GenerateRequest;

class RequestBuilderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto f = engine::GgufFile::Open(
        testing::TestDataPath("models/stories260K.gguf"));
    ASSERT_TRUE(f.ok());
    file_ = f->release();
    tokenizer_ = engine::Tokenizer::FromGguf(*file_)->release();
    chat_ =
        chat::ChatTemplate::Create(chat::ModelTemplates{}, "chatml")->release();
  }
  static void TearDownTestSuite() {
    delete chat_;
    delete tokenizer_;
    delete file_;
  }
  ModelContext Model(int64_t ctx = 512) {
    return {"stories", tokenizer_, ctx, chat_};
  }
  static GenerateRequest Prompt(const std::string& text) {
    GenerateRequest r;
    r.set_prompt(text);
    return r;
  }
  static inline engine::GgufFile* file_ = nullptr;
  static inline engine::Tokenizer* tokenizer_ = nullptr;
  static inline chat::ChatTemplate* chat_ = nullptr;
};

struct BadRequest {
  std::string name;
  std::function<void(GenerateRequest*)> mutate;
  std::string field;    // FieldOf the error
  std::string message;  // substring of it
};

TEST_F(RequestBuilderTest, InvalidRequestsNameTheirField) {
  const std::vector<BadRequest> cases = {
      {"max_tokens 0",
       [](GenerateRequest* r) { r->mutable_sampling()->set_max_tokens(0); },
       "sampling.max_tokens", "must be >= 1"},
      {"temperature",
       [](GenerateRequest* r) { r->mutable_sampling()->set_temperature(-1); },
       "sampling.temperature", "[0, 100]"},
      {"top_p", [](GenerateRequest* r) { r->mutable_sampling()->set_top_p(0); },
       "sampling.top_p", "(0, 1]"},
      {"min_p", [](GenerateRequest* r) { r->mutable_sampling()->set_min_p(2); },
       "sampling.min_p", "[0, 1]"},
      {"presence",
       [](GenerateRequest* r) {
         r->mutable_sampling()->set_presence_penalty(3);
       },
       "sampling.presence_penalty", "[-2, 2]"},
      {"logprobs",
       [](GenerateRequest* r) { r->mutable_sampling()->set_logprobs(21); },
       "sampling.logprobs", "at most 20"},
      {"17 stops",
       [](GenerateRequest* r) {
         for (int i = 0; i < 17; ++i) r->mutable_sampling()->add_stop("x");
       },
       "sampling.stop", "at most 16"},
      {"empty stop",
       [](GenerateRequest* r) { r->mutable_sampling()->add_stop(""); },
       "sampling.stop[0]", "1 to 256 bytes"},
      {"no prompt", [](GenerateRequest* r) { r->clear_prompt(); }, "prompt",
       "set prompt, messages or prompt_token_ids"},
      {"two prompts", [](GenerateRequest* r) { r->add_prompt_token_ids(1); },
       "prompt", "only one of"},
      {"bad role",
       [](GenerateRequest* r) {
         r->clear_prompt();
         auto* m = r->add_messages();
         m->set_role("wizard");
         m->set_content("hi");
       },
       "messages[0].role", "'wizard'"},
      {"max_tokens beyond int32",
       [](GenerateRequest* r) {
         r->mutable_sampling()->set_max_tokens(3000000000u);
       },
       "sampling.max_tokens", "at most 2147483647 (got 3000000000)"},
      {"rag with ids",
       [](GenerateRequest* r) {
         r->clear_prompt();
         r->add_prompt_token_ids(1);
         r->mutable_rag()->add_collections("c");
       },
       "rag", "not prompt_token_ids"},
      {"rag top_k",
       [](GenerateRequest* r) {
         r->mutable_rag()->add_collections("c");
         r->mutable_rag()->set_top_k(51);
       },
       "rag.top_k", "at most 50"},
      {"rag template",
       [](GenerateRequest* r) {
         r->mutable_rag()->add_collections("c");
         r->mutable_rag()->set_prompt_template("no placeholder");
       },
       "rag.prompt_template", "{passages}"},
  };
  for (const BadRequest& c : cases) {
    GenerateRequest r = Prompt("Once upon a time");
    c.mutate(&r);
    absl::Status s = ValidateGenerateRequest(r);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_EQ(FieldOf(s), c.field) << c.name;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message)) << c.name;
    // The builder refuses the same request with the same error.
    auto built = BuildGenerateParams(r, Model(), {});
    EXPECT_EQ(built.status(), s) << c.name;
  }
}

TEST_F(RequestBuilderTest, LimitsAreConfigurableAndNamed) {
  RequestLimits limits;
  limits.max_prompt_bytes = 10;
  absl::Status s =
      ValidateGenerateRequest(Prompt("a prompt longer than ten"), limits);
  EXPECT_EQ(FieldOf(s), "prompt");
  EXPECT_THAT(std::string(s.message()), HasSubstr("limit of 10 bytes"));
}

TEST_F(RequestBuilderTest, PromptAndSamplingBecomeEngineParams) {
  GenerateRequest r = Prompt("Once upon a time");
  r.mutable_sampling()->set_max_tokens(7);
  r.mutable_sampling()->set_temperature(0.5f);
  r.mutable_sampling()->set_seed(42);
  r.mutable_sampling()->add_stop("END");
  auto built = BuildGenerateParams(r, Model(), {});
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(built->params.prompt_tokens,
            tokenizer_->Encode("Once upon a time", true, false));
  EXPECT_EQ(built->params.max_tokens, 7);
  EXPECT_EQ(built->params.sampling.temperature, 0.5f);
  EXPECT_EQ(built->params.sampling.seed, 42u);
  EXPECT_EQ(built->params.stop, std::vector<std::string>{"END"});
}

TEST_F(RequestBuilderTest, TokenIdsOutsideTheVocabularyAreRefused) {
  GenerateRequest r;
  r.add_prompt_token_ids(1);
  r.add_prompt_token_ids(512);
  auto built = BuildGenerateParams(r, Model(), {});
  EXPECT_EQ(FieldOf(built.status()), "prompt_token_ids[1]");
}

// A user who types a control token's text gets plain text tokens: only the
// template's own markers are parsed as special.
TEST_F(RequestBuilderTest, MessageTextNeverBecomesControlTokens) {
  GenerateRequest r;
  auto* m = r.add_messages();
  m->set_role("user");
  m->set_content("hello </s> <s> world");
  auto built = BuildGenerateParams(r, Model(), {});
  ASSERT_TRUE(built.ok()) << built.status();
  const std::vector<int32_t>& ids = built->params.prompt_tokens;
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], tokenizer_->vocab().bos);
  // BOS once at the start, EOS nowhere, though the text spells both.
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tokenizer_->vocab().bos), 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tokenizer_->vocab().eos), 0);
}

retrieval::ChunkHit Passage(const std::string& id, const std::string& text) {
  retrieval::ChunkHit h;
  h.collection = "docs";
  h.document_id = id;
  h.text = text;
  h.end = static_cast<int64_t>(text.size());
  return h;
}

// RAG always fits: passages go in while prompt + max_tokens fits the
// context; the citations are exactly the passages in the prompt.
TEST_F(RequestBuilderTest, RagPassagesFitTheContext) {
  std::string long_text;
  for (int i = 0; i < 40; ++i)
    long_text += "The dog ran to the park and played with a ball. ";
  std::vector<retrieval::ChunkHit> hits = {Passage("a", "Pandas eat bamboo."),
                                           Passage("b", long_text),
                                           Passage("c", long_text)};
  GenerateRequest r = Prompt("What do pandas eat?");
  r.mutable_rag()->add_collections("docs");
  r.mutable_sampling()->set_max_tokens(32);
  const int64_t ctx = 256;
  auto built = BuildGenerateParams(r, Model(ctx), hits);
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_LE(static_cast<int64_t>(built->params.prompt_tokens.size()) + 32, ctx);
  ASSERT_GE(built->citations.size(), 1u);
  EXPECT_EQ(built->citations[0].document_id, "a");
  EXPECT_LT(built->citations.size(), 3u);  // not everything fits
  const std::string prompt =
      tokenizer_->Decode(built->params.prompt_tokens, false);
  for (const auto& c : built->citations)
    EXPECT_NE(prompt.find(c.text), std::string::npos) << c.document_id;
  // A question that cannot fit alone is the only error.
  GenerateRequest huge = Prompt(long_text + long_text + long_text);
  huge.mutable_rag()->add_collections("docs");
  auto refused = BuildGenerateParams(huge, Model(ctx), hits);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(refused.status()), "prompt");
}

TEST(ExecutorTest, RunsTasksAndRefusesWhenFull) {
  Executor executor("test", 1, 2);
  absl::Notification release, started;
  std::atomic<int> ran{0};
  ASSERT_TRUE(executor
                  .Post([&] {
                    started.Notify();
                    release.WaitForNotification();
                    ++ran;
                  })
                  .ok());
  started.WaitForNotification();
  ASSERT_TRUE(executor.Post([&] { ++ran; }).ok());
  ASSERT_TRUE(executor.Post([&] { ++ran; }).ok());
  absl::Status full = executor.Post([&] { ++ran; });
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.message()), HasSubstr("test queue is full"));
  release.Notify();
  executor.Shutdown();  // runs what was queued, joins
  EXPECT_EQ(ran.load(), 3);
  EXPECT_EQ(executor.Post([] {}).code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace lumen::server
