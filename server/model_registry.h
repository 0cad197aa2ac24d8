#pragma once
// ModelRegistry: the models lumend serves, each with its GGUF file, tokenizer
// and engine. Filled once at start-up (before Ready()), read-only after, so
// RPC threads read it without locks.

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
};

struct ModelLoadOptions {
  engine::WeightMode weights = engine::WeightMode::kAuto;
  int64_t ctx_size = 0;          // 0: the model's training context
  // --chat-template: "auto" (the file's template), a family or a .jinja path.
  std::string chat_template = "auto";
  engine::EngineOptions engine;  // num_threads: the engine's OpenMP team
};

class ModelRegistry {
 public:
  // Loads `path` as `name` and starts its engine. Start-up only; the calling
  // thread's OpenMP team is set to the engine's (the kernel choice measured
  // at load must see the same team).
  absl::Status Load(const std::string& name, const std::string& path,
                    const ModelLoadOptions& options,
                    engine::EngineObserver* observer);
  void MarkReady() { ready_.store(true); }
  bool ready() const { return ready_.load(); }

  // The model named `name`, or the first one when `name` is empty. NotFound
  // names the loaded models; Unavailable while loading.
  absl::StatusOr<ServedModel*> Find(const std::string& name) const;
  const std::vector<std::unique_ptr<ServedModel>>& models() const {
    return models_;
  }

  void BeginDrain();
  int64_t InFlight() const;
  void StopAll();

 private:
  std::vector<std::unique_ptr<ServedModel>> models_;
  std::atomic<bool> ready_{false};
};

}  // namespace lumen::server
