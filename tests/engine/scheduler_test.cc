// Scheduler and block pool with a fake model: the "model" samples token
// 1000 + step for every request that needs a token, so no engine runs.

#include "engine/scheduler/scheduler.h"

#include <memory>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

namespace lumen::engine {
namespace {

class SchedulerHarness {
 public:
  SchedulerHarness(int32_t blocks, SchedulerConfig config)
      : pool_(blocks), scheduler_(config, &pool_) {}

  SchedRequest* Add(int32_t prompt_len, int32_t first_token = 1) {
    auto r = std::make_unique<SchedRequest>();
    r->id = requests_.size();
    for (int32_t i = 0; i < prompt_len; ++i)
      r->tokens.push_back(first_token + i);
    r->num_prompt_tokens = prompt_len;
    scheduler_.Add(r.get());
    requests_.push_back(std::move(r));
    return requests_.back().get();
  }

  // One step with the fake model; returns the plan.
  SchedulerOutput Step() {
    SchedulerOutput out = scheduler_.Schedule();
    std::vector<int32_t> sampled;
    for (const auto& s : out.scheduled) {
      if (s.sample) sampled.push_back(1000 + step_);
    }
    scheduler_.Update(out, sampled);
    ++step_;
    return out;
  }

  int32_t Scheduled(const SchedulerOutput& out, const SchedRequest* r) const {
    for (const auto& s : out.scheduled) {
      if (s.request == r) return s.num_tokens;
    }
    return 0;
  }

  BlockPool& pool() { return pool_; }
  Scheduler& scheduler() { return scheduler_; }

 private:
  BlockPool pool_;
  Scheduler scheduler_;
  std::vector<std::unique_ptr<SchedRequest>> requests_;
  int step_ = 0;
};

SchedulerConfig Config(int32_t budget, int32_t max_running = 64) {
  return {budget, max_running, 16};
}

TEST(SchedulerTest, ChunksLongPromptsWithinTheTokenBudget) {
  SchedulerHarness h(100, Config(32));
  SchedRequest* r = h.Add(80);
  auto a = h.Step();
  EXPECT_EQ(h.Scheduled(a, r), 32);
  EXPECT_FALSE(a.scheduled[0].sample);
  auto b = h.Step();
  EXPECT_EQ(h.Scheduled(b, r), 32);
  auto c = h.Step();
  EXPECT_EQ(h.Scheduled(c, r), 16);
  EXPECT_TRUE(c.scheduled[0].sample);  // the last prompt chunk samples
  EXPECT_EQ(r->tokens.size(), 81u);
  auto d = h.Step();
  EXPECT_EQ(h.Scheduled(d, r), 1);  // then one token per step
  EXPECT_EQ(r->blocks.size(), 6u);  // 82 tokens of K/V need 6 blocks
}

TEST(SchedulerTest, RunningDecodesComeBeforeWaitingPrompts) {
  SchedulerHarness h(100, Config(20));
  SchedRequest* a = h.Add(10);
  h.Step();  // a prefilled
  SchedRequest* b = h.Add(40);
  SchedRequest* c = h.Add(5);
  auto s = h.Step();
  ASSERT_GE(s.scheduled.size(), 2u);
  EXPECT_EQ(s.scheduled[0].request, a);
  EXPECT_EQ(h.Scheduled(s, a), 1);
  EXPECT_EQ(h.Scheduled(s, b), 19);  // the rest of the budget
  EXPECT_EQ(h.Scheduled(s, c), 0);   // FCFS: c waits behind b
  EXPECT_EQ(s.num_tokens, 20);
}

TEST(SchedulerTest, FirstComeFirstServedAdmission) {
  SchedulerHarness h(100, Config(64, /*max_running=*/2));
  SchedRequest* a = h.Add(4);
  SchedRequest* b = h.Add(4);
  SchedRequest* c = h.Add(4);
  auto s = h.Step();
  EXPECT_EQ(h.Scheduled(s, a), 4);
  EXPECT_EQ(h.Scheduled(s, b), 4);
  EXPECT_EQ(h.Scheduled(s, c), 0);  // max_running
  EXPECT_EQ(h.scheduler().num_waiting(), 1);
  h.scheduler().Finish(a);
  auto t = h.Step();
  EXPECT_EQ(h.Scheduled(t, c), 4);
}

TEST(SchedulerTest, PreemptsTheNewestAndResumesIt) {
  // 4 blocks of 16 tokens: two requests of 30 tokens fit, growth does not.
  SchedulerHarness h(4, Config(64));
  SchedRequest* a = h.Add(30);
  SchedRequest* b = h.Add(30);
  h.Step();  // both prefilled (30 computed, 31 tokens), 2 blocks each
  EXPECT_EQ(h.pool().num_free_blocks(), 0);
  h.Step();           // 31 computed
  h.Step();           // 32 computed: the blocks are full
  auto s = h.Step();  // a needs a third block: b (newest) is preempted
  ASSERT_EQ(s.preempted.size(), 1u);
  EXPECT_EQ(s.preempted[0], b);
  EXPECT_EQ(b->num_computed_tokens, 0);
  EXPECT_TRUE(b->blocks.empty());
  EXPECT_EQ(h.Scheduled(s, a), 1);
  EXPECT_EQ(h.scheduler().num_waiting(), 1);
  EXPECT_EQ(h.scheduler().num_preemptions(), 1);
  // a finishes; b resumes. Its two full blocks were published to the prefix
  // cache before preemption, so only the rest (generated tokens included)
  // is recomputed.
  const size_t b_tokens = b->tokens.size();
  EXPECT_EQ(b_tokens, 33u);
  h.scheduler().Finish(a);
  auto r = h.Step();
  EXPECT_EQ(h.Scheduled(r, b), static_cast<int32_t>(b_tokens) - 32);
  EXPECT_TRUE(r.scheduled[0].sample);
  EXPECT_EQ(b->num_cached_tokens,
            0);  // resumption is not a client-visible cache hit
}

TEST(SchedulerTest, ReusesCachedPrefixBlocks) {
  SchedulerHarness h(100, Config(256));
  SchedRequest* a = h.Add(40);  // 2 full blocks + 8
  h.Step();
  h.scheduler().Finish(a);  // blocks free but cached
  EXPECT_EQ(h.pool().num_cached_free_blocks(), 2);
  SchedRequest* b = h.Add(50);  // same first 40 tokens
  auto s = h.Step();
  EXPECT_EQ(b->num_cached_tokens, 32);
  EXPECT_EQ(h.Scheduled(s, b), 50 - 32);
  EXPECT_EQ(h.scheduler().prefix_hit_tokens(), 32);
  SchedRequest* c = h.Add(40, /*first_token=*/7);  // different prefix
  h.Step();
  EXPECT_EQ(c->num_cached_tokens, 0);
  // A prompt of exactly one block leaves one token to compute.
  SchedRequest* d = h.Add(16);
  auto t = h.Step();
  EXPECT_EQ(d->num_cached_tokens, 0);
  EXPECT_EQ(h.Scheduled(t, d), 16);
}

TEST(SchedulerTest, SharedPrefixBlocksAreReferencedNotCopied) {
  SchedulerHarness h(100, Config(256));
  SchedRequest* a = h.Add(33);
  h.Step();
  SchedRequest* b = h.Add(33);
  h.Step();
  EXPECT_EQ(a->blocks[0], b->blocks[0]);
  EXPECT_EQ(a->blocks[1], b->blocks[1]);
  EXPECT_EQ(h.pool().ref_count(a->blocks[0]), 2);
  h.scheduler().Finish(a);
  EXPECT_EQ(h.pool().ref_count(b->blocks[0]), 1);
}

TEST(SchedulerTest, AbortFreesBlocksAtOnce) {
  SchedulerHarness h(10, Config(64));
  SchedRequest* a = h.Add(40);
  h.Step();
  EXPECT_EQ(h.pool().num_free_blocks(), 7);
  h.scheduler().Finish(a);
  EXPECT_EQ(h.pool().num_free_blocks(), 10);
  EXPECT_FALSE(h.scheduler().HasWork());
  // Aborting a waiting request removes it from the queue.
  SchedRequest* b = h.Add(4);
  h.scheduler().Finish(b);
  EXPECT_EQ(h.scheduler().num_waiting(), 0);
  EXPECT_TRUE(h.Step().scheduled.empty());
}

TEST(SchedulerTest, WaitsWhenNoBlocksAreFree) {
  SchedulerHarness h(2, Config(64));
  SchedRequest* a = h.Add(20);
  SchedRequest* b = h.Add(20);
  auto s = h.Step();
  EXPECT_EQ(h.Scheduled(s, a), 20);
  EXPECT_EQ(h.Scheduled(s, b), 0);
  EXPECT_EQ(b->state, RequestState::kWaiting);
  EXPECT_TRUE(b->blocks.empty());
}

// A step that decodes keeps its prompt tokens within the prefill budget
// (here a fixed 48): every decoding request still gets its token, and a long
// prompt arriving meanwhile is computed in budget-sized chunks.
TEST(SchedulerTest, DecodingStepsTakeBoundedPromptChunks) {
  const PrefillBudget fixed48({.max_stall = 0, .max_tokens = 48});
  SchedulerHarness h(200, Config(256));
  h.scheduler().SetPrefillBudget(&fixed48);
  SchedRequest* a = h.Add(20);
  SchedRequest* b = h.Add(20, 500);
  // Nothing decodes yet: both prompts whole, beyond the decoding budget.
  auto first = h.Step();
  EXPECT_EQ(h.Scheduled(first, a), 20);
  EXPECT_EQ(h.Scheduled(first, b), 20);
  EXPECT_EQ(first.num_decoding, 0);
  SchedRequest* big = h.Add(200, 900);
  int32_t big_steps = 0;
  while (big->num_computed_tokens < big->num_prompt_tokens) {
    auto step = h.Step();
    EXPECT_EQ(h.Scheduled(step, a), 1);
    EXPECT_EQ(h.Scheduled(step, b), 1);
    EXPECT_EQ(step.num_decoding, 2);
    EXPECT_LE(h.Scheduled(step, big), 48);
    EXPECT_GT(h.Scheduled(step, big), 0);
    ++big_steps;
    ASSERT_LT(big_steps, 10);
  }
  EXPECT_EQ(big_steps, 5);  // 48 * 4 + 8
  // A lone prompt with nothing decoding takes the whole step budget.
  SchedulerHarness alone(200, Config(256));
  alone.scheduler().SetPrefillBudget(&fixed48);
  SchedRequest* solo = alone.Add(200);
  EXPECT_EQ(alone.Scheduled(alone.Step(), solo), 200);
}

TEST(BlockPoolTest, EvictsLeastRecentlyFreedFirst) {
  BlockPool pool(3);
  auto a = *pool.Allocate(3);
  const BlockHash h11 = PrefixRoot("11"), h22 = PrefixRoot("22");
  pool.Register(a[0], h11);
  pool.Register(a[1], h22);
  pool.Free(std::vector<int32_t>{a[1]});
  pool.Free(std::vector<int32_t>{a[0]});
  pool.Free(std::vector<int32_t>{a[2]});
  EXPECT_EQ(pool.num_cached_free_blocks(), 2);
  auto b = *pool.Allocate(1);  // a[1] was freed first
  EXPECT_EQ(b[0], a[1]);
  EXPECT_FALSE(pool.Lookup(h22).has_value());
  EXPECT_EQ(pool.Lookup(h11), a[0]);
  EXPECT_FALSE(pool.Allocate(3).has_value());
}

std::string Hex(const BlockHash& h) {
  std::string out;
  for (uint8_t b : h.digest) absl::StrAppendFormat(&out, "%02x", b);
  return out;
}

TEST(BlockPoolTest, HashCoversTheWholePrefix) {
  std::vector<int32_t> x = {1, 2, 3}, y = {1, 2, 4};
  const BlockHash root = PrefixRoot("");
  EXPECT_NE(HashBlock(root, x), HashBlock(root, y));
  EXPECT_NE(HashBlock(PrefixRoot("a"), x), HashBlock(PrefixRoot("b"), x));
  EXPECT_NE(HashBlock(HashBlock(root, x), x), HashBlock(root, x));
  EXPECT_EQ(HashBlock(root, x), HashBlock(root, x));
}

// The keys are SHA-256 digests: checked against Python's hashlib,
// sha256(b"lumen prefix cache v1" + salt) and sha256(parent + tokens as
// little-endian int32).
TEST(BlockPoolTest, HashIsSha256OfParentAndTokens) {
  const BlockHash root = PrefixRoot("tenant-a");
  EXPECT_EQ(Hex(root),
            "d97d9001942d88e62b98bdf6f982311c41502c696166426557443ef0795bc41a");
  EXPECT_EQ(Hex(HashBlock(root, std::vector<int32_t>{1, 2, -3})),
            "59e993d054f31966266357a27a03f98e94badb894c7f55208ad39b3eec91b8af");
}

}  // namespace
}  // namespace lumen::engine
