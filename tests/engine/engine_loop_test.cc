// The engine thread and its output stage, end to end on stories260K: an
// abort ends a request before the next step, a deadline stops a long
// generation, both free the request's blocks, stop strings end requests in
// the output stage, a lazy constraint takes over at its trigger, the prefix
// cache keeps salts apart, prompts are chunked beside a decoding stream under
// a stall bound, the attention scratch holds whatever OpenMP team the
// calling thread has, and the idle engine backs its KV arena with memory.

#include <omp.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/constrained/constraint_cache.h"
#include "engine/engine.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/engine/model_runner.h"
#include "tests/test_support.h"

namespace lumen::engine {
namespace {

// Collects one request's output; the notifier runs on the output thread.
class Collector {
 public:
  Collector() : stream_(std::make_shared<RequestStream>()) {
    stream_->SetNotifier([this] {
      absl::MutexLock lock(&mu_);
      GenerationDelta d;
      while (stream_->Take(&d)) {
        all_.MergeFrom(std::move(d));
      }
    });
  }
  std::shared_ptr<RequestStream> stream() { return stream_; }
  GenerationDelta WaitForEnd() {
    absl::MutexLock lock(&mu_);
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return all_.finished;
    };
    mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(60));
    return all_;
  }

 private:
  std::shared_ptr<RequestStream> stream_;
  absl::Mutex mu_;
  GenerationDelta all_ ABSL_GUARDED_BY(mu_);
};

class EngineLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ =
        testing::OpenModel(testing::TestDataPath("models/stories260K.gguf"));
    ASSERT_NE(file_, nullptr);
    auto tok = Tokenizer::FromGguf(*file_);
    ASSERT_TRUE(tok.ok());
    tokenizer_ = std::move(*tok);
  }
  std::unique_ptr<Engine> MakeEngine(int32_t threads = 1,
                                     double max_decode_stall = 0,
                                     EngineObserver* observer = nullptr) {
    TransformerOptions t;
    t.max_batch_tokens = 256;
    t.max_context = 2048;
    t.measure_crossover = false;
    t.num_threads = threads;
    auto model = Transformer::Load(*file_, t);
    EXPECT_TRUE(model.ok()) << model.status();
    EngineOptions o;
    o.max_batch_tokens = 256;
    o.kv_cache_bytes = int64_t{64} << 20;
    o.num_threads = threads;
    o.max_decode_stall = max_decode_stall;
    auto e = Engine::Create("stories", std::move(*model), tokenizer_.get(), o,
                            observer);
    EXPECT_TRUE(e.ok()) << e.status();
    return std::move(*e);
  }
  static GenerateParams Long(int max_tokens) {
    GenerateParams p;
    p.prompt_tokens = {1};
    p.max_tokens = max_tokens;
    p.ignore_eos = true;
    return p;
  }
  // 32 tokens, two full 16-token blocks: a later request with the same
  // prompt reuses the first from the prefix cache (its last prompt token is
  // always computed, so the second block is recomputed).
  std::vector<int32_t> TwoBlockPrompt() const {
    return tokenizer_->Encode(
        "Once upon a time there was a cat who liked to play in the sun "
        "all day long with her friends.",
        true, false);
  }
  // Bounded wait until no request holds KV blocks.
  static bool BlocksFreed(const Engine& e) {
    for (int i = 0; i < 2000; ++i) {
      const EngineStats s = e.Stats();
      if (s.running == 0 && s.queue_depth == 0 &&
          s.kv_blocks_free == s.kv_blocks_total)
        return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }

  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

// Records every step (engine thread) for the test thread, and can hold the
// engine thread at the end of a chosen step until the test releases it, so
// a test acts between two known steps however the threads are scheduled.
class StepRecorder : public EngineObserver {
 public:
  void OnStep(const StepSummary& step) override {
    absl::MutexLock lock(&mu_);
    steps_.push_back(step);
    if (++num_steps_ != hold_at_) return;
    held_ = true;
    mu_.Await(absl::Condition(
        +[](bool* held) { return !*held; }, &held_));
  }
  std::vector<StepSummary> TakeSteps() {
    absl::MutexLock lock(&mu_);
    return std::exchange(steps_, {});
  }
  // The engine thread will stop at the end of its `step`-th step (from 1).
  void HoldAtStep(int64_t step) {
    absl::MutexLock lock(&mu_);
    hold_at_ = step;
  }
  // Bounded wait until the engine thread is held; false if it never was.
  bool WaitUntilHeld() {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&held_), absl::Seconds(60));
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    held_ = false;
    hold_at_ = -1;
  }

 private:
  absl::Mutex mu_;
  std::vector<StepSummary> steps_ ABSL_GUARDED_BY(mu_);
  int64_t num_steps_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t hold_at_ ABSL_GUARDED_BY(mu_) = -1;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
};

// The engine is held at the end of its 20th step (the prompt step and 19
// decode steps, one token each) while the abort arrives from this thread:
// the request ends before another step, with exactly those 20 tokens.
TEST_F(EngineLoopTest, AbortEndsTheRequestBeforeTheNextStep) {
  StepRecorder steps;
  steps.HoldAtStep(20);
  auto engine = MakeEngine(1, /*max_decode_stall=*/0, &steps);
  Collector c;
  ASSERT_TRUE(engine->Submit(1, Long(1800), c.stream()).ok());
  const bool held = steps.WaitUntilHeld();
  if (held) engine->Abort(1);
  steps.Release();  // before any return: a held engine never stops
  ASSERT_TRUE(held);
  const GenerationDelta end = c.WaitForEnd();
  ASSERT_TRUE(end.finished);
  EXPECT_EQ(end.finish_reason, "cancelled");
  EXPECT_TRUE(end.error.ok()) << end.error;
  EXPECT_EQ(end.usage.completion_tokens, 20);
  EXPECT_EQ(steps.TakeSteps().size(), 20u);
  EXPECT_TRUE(BlocksFreed(*engine));
}

TEST_F(EngineLoopTest, IdleEngineBacksItsKvCacheKeepingCachedPrefixes) {
  if (!testing::KernelPopulatesPages())
    GTEST_SKIP() << "no MADV_POPULATE_WRITE here";
  auto engine = MakeEngine();
  GenerateParams p;
  p.prompt_tokens = TwoBlockPrompt();
  p.max_tokens = 24;
  p.ignore_eos = true;
  ASSERT_EQ(p.prompt_tokens.size(), 32u);
  Collector first;
  ASSERT_TRUE(engine->Submit(1, p, first.stream()).ok());
  const GenerationDelta a = first.WaitForEnd();
  ASSERT_TRUE(a.finished);
  ASSERT_TRUE(a.error.ok()) << a.error;
  EXPECT_EQ(a.token_ids.size(), 24u);
  EngineStats s;
  for (int i = 0; i < 6000; ++i) {
    s = engine->Stats();
    if (s.kv_cache_bytes > 0 && s.kv_cache_populated_bytes == s.kv_cache_bytes)
      break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GE(s.kv_cache_bytes, int64_t{63} << 20);  // of 64 MiB asked
  EXPECT_EQ(s.kv_cache_populated_bytes, s.kv_cache_bytes);
  // The same request after the whole arena was populated reuses the first
  // block the first one cached, with the same tokens. (Whether its pages
  // were backed before or after it was written depends on thread timing;
  // KvCacheTest checks that populating keeps what is written.)
  Collector second;
  ASSERT_TRUE(engine->Submit(2, p, second.stream()).ok());
  const GenerationDelta b = second.WaitForEnd();
  ASSERT_TRUE(b.finished);
  EXPECT_EQ(b.usage.cached_prompt_tokens, 16);
  EXPECT_EQ(b.token_ids, a.token_ids);
}

TEST_F(EngineLoopTest, DeadlineEndsTheRequestAndFreesItsBlocks) {
  auto engine = MakeEngine();
  Collector c;
  GenerateParams p = Long(1800);
  p.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(30);
  ASSERT_TRUE(engine->Submit(2, std::move(p), c.stream()).ok());
  const GenerationDelta end = c.WaitForEnd();
  ASSERT_TRUE(end.finished);
  EXPECT_EQ(end.error.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(end.finish_reason, "cancelled");
  EXPECT_LT(end.usage.completion_tokens, 1800);
  EXPECT_TRUE(BlocksFreed(*engine));
}

TEST_F(EngineLoopTest, StopStringEndsTheRequestInTheOutputStage) {
  auto engine = MakeEngine();
  // stories260K's greedy continuation from BOS begins "Once upon a time,
  // there was a little girl named Lily."
  Collector c;
  GenerateParams p = Long(1800);
  p.stop = {"little girl"};
  ASSERT_TRUE(engine->Submit(3, std::move(p), c.stream()).ok());
  const GenerationDelta end = c.WaitForEnd();
  EXPECT_EQ(end.finish_reason, "stop_sequence");
  EXPECT_EQ(end.text, "Once upon a time, there was a ");
  EXPECT_LT(end.usage.completion_tokens, 20);
  EXPECT_EQ(static_cast<int>(end.token_ids.size()),
            end.usage.completion_tokens);
  // The engine was told to stop: it does not run on to the 1800 tokens it
  // would make untold (how far it got before the output thread's abort
  // landed depends on thread scheduling).
  EXPECT_TRUE(BlocksFreed(*engine));
  EXPECT_LT(engine->Stats().generation_tokens, 1800);
}

// Greedy from BOS, free until the output holds `trigger`, then `grammar`
// (no grammar: free all along).
GenerationDelta RunLazy(Engine* engine, const Tokenizer& tokenizer, uint64_t id,
                        const std::string& grammar, const std::string& trigger,
                        bool ignore_eos = false) {
  Collector c;
  GenerateParams p;
  p.prompt_tokens = {1};
  p.max_tokens = 40;
  p.sampling.temperature = 0;
  p.ignore_eos = ignore_eos;
  if (!grammar.empty()) {
    constrained::ConstraintCache cache(tokenizer);
    auto compiled = cache.Get({constrained::ConstraintKind::kGrammar, grammar});
    EXPECT_TRUE(compiled.ok()) << compiled.status();
    if (!compiled.ok()) return {};
    p.constraint = *compiled;
    p.constraint_trigger = trigger;
  }
  if (absl::Status s = engine->Submit(id, std::move(p), c.stream()); !s.ok()) {
    ADD_FAILURE() << s;
    return {};
  }
  return c.WaitForEnd();
}

TEST_F(EngineLoopTest, LazyConstraintTakesOverAtItsTrigger) {
  auto engine = MakeEngine();
  // Unconstrained, greedy: "Once upon a time, there was a little girl named
  // Lily. She ...". The grammar starts at the trigger and forces digits the
  // model would never write there.
  const GenerationDelta lazy =
      RunLazy(engine.get(), *tokenizer_, 20,
              R"(root ::= "Lily" " is " [0-9] [0-9] [0-9] ".")", "Lily");
  EXPECT_TRUE(std::regex_match(
      lazy.text, std::regex("Once upon a time, there was a little girl named "
                            "Lily is [0-9]{3}\\.")))
      << lazy.text;
  // The grammar is complete: the request ends there.
  EXPECT_EQ(lazy.finish_reason, "stop");
  // A trigger the output never holds leaves it free: the greedy text.
  const GenerationDelta free_run = RunLazy(
      engine.get(), *tokenizer_, 21, R"(root ::= "zebra" [0-9]+)", "zebra");
  EXPECT_TRUE(free_run.text.starts_with(
      "Once upon a time, there was a little girl named Lily. She"))
      << free_run.text;
  EXPECT_EQ(free_run.usage.completion_tokens, 40);
}

// A trigger whose token runs on into text the grammar refuses leaves that
// occurrence free (the request is not failed): here the trigger is the
// second token's text less its last byte, and the grammar wants another
// byte there.
TEST_F(EngineLoopTest, RefusedTriggerLeavesTheOutputFree) {
  auto engine = MakeEngine();
  const GenerationDelta free_run =
      RunLazy(engine.get(), *tokenizer_, 22, "", "");
  ASSERT_GE(free_run.token_ids.size(), 2u);
  constrained::ConstraintCache cache(*tokenizer_);
  const std::string piece(cache.trie()->TokenBytes(free_run.token_ids[1]));
  ASSERT_GE(piece.size(), 3u) << piece;
  for (char ch : piece) ASSERT_TRUE(std::isalpha(ch) || ch == ' ') << piece;
  const std::string trigger = piece.substr(0, piece.size() - 1);
  ASSERT_EQ(free_run.text.find(trigger), free_run.text.find(piece));
  const GenerationDelta lazy =
      RunLazy(engine.get(), *tokenizer_, 23,
              "root ::= \"" + trigger + "\" \"\\x01\"", trigger);
  EXPECT_TRUE(lazy.error.ok()) << lazy.error;
  EXPECT_EQ(lazy.text, free_run.text);
  EXPECT_EQ(lazy.finish_reason, free_run.finish_reason);
}

// Under ignore_eos an end-of-generation token the grammar accepts still ends
// a constrained request (as "stop"), even where the grammar could go on.
TEST_F(EngineLoopTest, IgnoreEosEndsAtTheConstraintsEndOfGeneration) {
  auto engine = MakeEngine();
  const GenerationDelta lazy =
      RunLazy(engine.get(), *tokenizer_, 24,
              R"(root ::= "Lily" ("\x01" "\x02")*)", "Lily",
              /*ignore_eos=*/true);
  EXPECT_TRUE(lazy.error.ok()) << lazy.error;
  EXPECT_EQ(lazy.finish_reason, "stop");
  ASSERT_FALSE(lazy.token_ids.empty());
  // Greedy picks end-of-generation after "Lily" (the control bytes are far
  // less likely): the case that used to fail the request.
  EXPECT_TRUE(tokenizer_->IsEndOfGeneration(lazy.token_ids.back()))
      << lazy.text;
}

TEST_F(EngineLoopTest, PrefixCacheIsSharedOnlyWithinASalt) {
  auto engine = MakeEngine();
  auto run = [&](uint64_t id, const std::string& salt) {
    Collector c;
    GenerateParams p;
    p.prompt_tokens = TwoBlockPrompt();
    p.max_tokens = 2;
    p.cache_salt = salt;
    EXPECT_TRUE(engine->Submit(id, std::move(p), c.stream()).ok());
    return c.WaitForEnd().usage.cached_prompt_tokens;
  };
  EXPECT_EQ(run(10, "tenant:a"), 0);
  EXPECT_GT(run(11, "tenant:a"), 0);  // the same tenant reuses its prefix
  EXPECT_EQ(run(12, "tenant:b"), 0);  // another tenant never does
  EXPECT_GT(run(13, "tenant:b"), 0);
}

// Runs a 200-token prompt that arrives while another request decodes and
// returns the steps from its arrival to its end. The first request (a
// 40-token prompt step, then decode steps) is long enough to still be
// decoding when the second ends, however slowly this thread is scheduled;
// that is checked, so a step list without the stream cannot pass.
std::vector<StepSummary> PromptBesideAStream(Engine* engine,
                                             StepRecorder* steps) {
  Collector decoding;
  GenerateParams first;
  first.prompt_tokens.assign(40, 1);
  first.max_tokens = 1990;
  first.ignore_eos = true;
  // The engine is held after the stream's 8th step until the prompt is
  // queued, so the prompt meets the stream however slowly this thread runs.
  steps->HoldAtStep(8);
  EXPECT_TRUE(engine->Submit(1, std::move(first), decoding.stream()).ok());
  EXPECT_TRUE(steps->WaitUntilHeld());
  steps->TakeSteps();
  Collector prompt;
  GenerateParams second;
  // 200 tokens that share no block with the first prompt (no prefix reuse);
  // one 256-token step could take them all.
  for (int i = 0; i < 200; ++i) second.prompt_tokens.push_back(5 + i % 50);
  second.max_tokens = 1;
  EXPECT_TRUE(engine->Submit(2, std::move(second), prompt.stream()).ok());
  steps->Release();
  EXPECT_TRUE(prompt.WaitForEnd().finished);
  engine->Abort(1);
  EXPECT_EQ(decoding.WaitForEnd().finish_reason, "cancelled");
  return steps->TakeSteps();
}

// With a time bound on decode stalls, the prompt is computed in chunks
// beside the stream. A stall of a millionth of a decode step fits no prompt
// token, so the bound is its floor (64 prompt tokens) once both costs are
// measured: the first request's prompt prices a prompt token, its decode
// steps price a decode step.
TEST_F(EngineLoopTest, DecodeStallBoundChunksAPromptBesideADecodingStream) {
  StepRecorder steps;
  auto engine = MakeEngine(1, /*max_decode_stall=*/1e-6, &steps);
  // 200 prompt tokens in chunks of at most 64, each beside the stream's
  // token: at least four steps of two sequences and 2..65 tokens.
  int mixed = 0;
  for (const StepSummary& step : PromptBesideAStream(engine.get(), &steps)) {
    EXPECT_LE(step.num_tokens, 65);
    mixed += step.num_sequences == 2;
  }
  EXPECT_GE(mixed, 4);
  EXPECT_TRUE(BlocksFreed(*engine));
}

// Without the time bound the same prompt runs in one step: the stream's
// token and all 200 prompt tokens.
TEST_F(EngineLoopTest, WithoutAStallBoundAPromptRunsInOneStep) {
  StepRecorder steps;
  auto engine = MakeEngine(1, /*max_decode_stall=*/0, &steps);
  int32_t largest = 0;
  for (const StepSummary& step : PromptBesideAStream(engine.get(), &steps))
    largest = std::max(largest, step.num_tokens);
  EXPECT_EQ(largest, 201);
}

// The model's attention scratch is sized for TransformerOptions::num_threads;
// a caller whose OpenMP team is larger must not write past it (ASan
// watches this in the sanitizer build).
TEST_F(EngineLoopTest, AttentionNeverRunsMoreThreadsThanItsScratch) {
  TransformerOptions t;
  t.max_batch_tokens = 64;
  t.max_context = 2048;
  t.measure_crossover = false;
  t.num_threads = 1;
  auto small = Transformer::Load(*file_, t);
  ASSERT_TRUE(small.ok());
  t.num_threads = 0;  // the loading thread's team
  const int saved = omp_get_max_threads();
  omp_set_num_threads(4);
  auto wide = Transformer::Load(*file_, t);
  ASSERT_TRUE(wide.ok());
  ASSERT_EQ((*wide)->num_threads(), 4);
  const std::vector<int32_t> prompt = tokenizer_->Encode(
      "One day a little dog found a red ball in the park.", true, false);
  // A team of 4 calls the model sized for 1: same logits as the model
  // sized for 4, no overflow.
  const auto a = testing::GreedyAlone(small->get(), prompt, 24);
  const auto b = testing::GreedyAlone(wide->get(), prompt, 24);
  omp_set_num_threads(saved);
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace lumen::engine
