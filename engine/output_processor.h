#pragma once
// OutputProcessor: the output stage of one engine (vLLM v1's output
// processor). Its own thread turns the engine thread's per-step token events
// into what clients see: detokenized text (UTF-8 safe across tokens), stop
// strings held back and cut, log-probability token strings, usage and
// timings; it pushes the result to each request's RequestStream (whose
// notifier makes the front end write) and reports finished requests to the
// observer (metrics, request log). A stop string ends a request here: the
// engine is asked to abort it and what it still generates is dropped.
//
// Threads: Register from the submitting thread (before the engine can see
// the request), Post and TakeBuffer from the engine thread, everything else
// on the output thread.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "engine/generation.h"
#include "engine/stop_matcher.h"
#include "engine/tokenizer/tokenizer.h"

namespace lumen::engine {

class EngineObserver;

class OutputProcessor {
 public:
  // `abort` cancels a request in the engine (called for stop strings, from
  // the output thread). The tokenizer and observer must outlive this.
  OutputProcessor(std::string model, const Tokenizer* tokenizer,
                  EngineObserver* observer,
                  std::function<void(uint64_t)> abort);
  ~OutputProcessor();  // Stop()s

  // Makes request `id` known to the output thread. Must precede any event
  // for it (the engine only sees the request after this returns).
  void Register(uint64_t id, const GenerateParams& params,
                std::shared_ptr<RequestStream> stream) ABSL_LOCKS_EXCLUDED(mu_);
  // Hands one step's events to the output thread. Engine thread.
  void Post(std::unique_ptr<StepEvents> step) ABSL_LOCKS_EXCLUDED(mu_);
  // An empty events buffer (recycled). Engine thread.
  std::unique_ptr<StepEvents> TakeBuffer() ABSL_LOCKS_EXCLUDED(mu_);
  // Processes everything posted so far, then joins the output thread.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Registration {
    uint64_t id;
    std::vector<std::string> stop;
    int32_t num_prompt_tokens;
    bool logprobs;
    bool at_text_start;
    std::string adapter;
    std::string api;
    SteadyTime arrival;
    std::shared_ptr<RequestStream> stream;
    // The request's LoRA adapter, held until its final output is pushed:
    // an unload waiting for it returns only after the request finished.
    std::shared_ptr<const void> adapter_hold;
    std::function<void(const Usage&)> on_finished;
  };
  // A request's output state. Output thread only.
  struct Request {
    Request(const Tokenizer& tokenizer, Registration r)
        : reg(std::move(r)),
          detokenizer(tokenizer, reg.at_text_start),
          stop(reg.stop) {}
    Registration reg;
    StreamingDetokenizer detokenizer;
    StopMatcher stop;
    int32_t completion_tokens = 0;
    int32_t num_cached_tokens = 0;
    std::optional<SteadyTime> first_scheduled, first_token;
  };
  using Item = std::variant<Registration, std::unique_ptr<StepEvents>>;

  void Loop();
  void Process(StepEvents& step);
  // Ends a request: final delta (usage, timings), observer, forget it.
  void Finish(Request& r, GenerationDelta d, std::string reason,
              absl::Status error, SteadyTime now);

  const std::string model_;
  const Tokenizer* tokenizer_;
  EngineObserver* observer_;
  std::function<void(uint64_t)> abort_;

  // Output thread only.
  absl::flat_hash_map<uint64_t, std::unique_ptr<Request>> requests_;

  absl::Mutex mu_;
  absl::CondVar work_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<StepEvents>> spare_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace lumen::engine
