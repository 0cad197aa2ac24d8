#pragma once
// ModelRegistry: the models lumend serves, each with its GGUF file, tokenizer
// and engine. Filled once by the main thread at start-up, read-only after
// MarkModelsLoaded(), so RPC threads read it without locks. The RPC server
// is already up while models load (health says NOT_SERVING), so RPC threads
// must never see the vector while it grows: models() is empty until then.

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "chat/chat_template.h"
#include "engine/constrained/constraint_cache.h"
#include "engine/engine.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"

namespace lumen::server {

struct ServedModel {
  std::string name;
  std::string path;
  std::unique_ptr<engine::GgufFile> file;
  std::unique_ptr<engine::Tokenizer> tokenizer;
  std::unique_ptr<engine::Engine> engine;
  // How chat messages become this model's prompt (compiled once).
  std::unique_ptr<chat::ChatTemplate> chat_template;
  // Compiled output constraints for this vocabulary (thread-safe).
  std::unique_ptr<engine::constrained::ConstraintCache> constraints;
  uint64_t parameters = 0;
  // Where the load's time went, for the log.
  struct LoadSeconds {
    double file = 0;           // open, tokenizer, chat template
    double weights = 0;        // matrices read or repacked
    double kernel_choice = 0;  // small-M kernel vs oneDNN timed per shape
    double engine = 0;         // KV cache, engine and output threads
  } load_seconds;
};

struct ModelLoadOptions {
  engine::WeightMode weights = engine::WeightMode::kAuto;
  int64_t ctx_size = 0;  // 0: the model's training context
  // --chat-template: "auto" (the file's template), a family or a .jinja path.
  std::string chat_template = "auto";
  engine::EngineOptions engine;  // num_threads: the engine's OpenMP team
  // engine::TransformerOptions::kernel_choice_file (lumend: in --data-dir).
  std::string kernel_choice_file;
};

class ModelRegistry {
 public:
  // Loads `path` as `name` and starts its engine. Main thread, before
  // MarkModelsLoaded(). The weights are loaded on a transient thread with
  // an OpenMP team of the engine's size (the kernel choice measured at load
  // must see the same team), which leaves no team on the calling thread.
  absl::StatusOr<const ServedModel*> Load(const std::string& name,
                                          const std::string& path,
                                          const ModelLoadOptions& options,
                                          engine::EngineObserver* observer);
  // Every model is loaded: models() shows them from now on (adapters for
  // them may still be loading).
  void MarkModelsLoaded() { models_loaded_.store(true); }
  // Start-up is over: Find() answers from now on.
  void MarkReady() { ready_.store(true); }
  bool ready() const { return ready_.load(); }

  // The model named `name`, or the first one when `name` is empty. NotFound
  // names the loaded models; Unavailable while loading.
  absl::StatusOr<ServedModel*> Find(const std::string& name) const;
  // Every served model; empty until MarkModelsLoaded().
  const std::vector<std::unique_ptr<ServedModel>>& models() const {
    static const std::vector<std::unique_ptr<ServedModel>> kNone;
    return models_loaded_.load() ? models_ : kNone;
  }

  void BeginDrain();
  int64_t InFlight() const;
  void StopAll();

 private:
  std::vector<std::unique_ptr<ServedModel>> models_;
  std::atomic<bool> models_loaded_{false};
  std::atomic<bool> ready_{false};
};

}  // namespace lumen::server
