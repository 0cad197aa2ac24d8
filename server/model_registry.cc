#include "server/model_registry.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/openmp_wait.h"
#include "chat/gguf_templates.h"

namespace lumen::server {

absl::StatusOr<const ServedModel*> ModelRegistry::Load(
    const std::string& name, const std::string& path,
    const ModelLoadOptions& options, engine::EngineObserver* observer) {
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  auto start = Clock::now();
  auto m = std::make_unique<ServedModel>();
  m->name = name;
  m->path = path;
  auto file = engine::GgufFile::Open(path);
  if (!file.ok()) return file.status();
  m->file = std::move(*file);
  for (const auto& t : m->file->tensors()) m->parameters += t.num_elements;
  auto tok = engine::Tokenizer::FromGguf(*m->file);
  if (!tok.ok()) return tok.status();
  m->tokenizer = std::move(*tok);
  auto chat = chat::ChatTemplate::Create(
      chat::ReadModelTemplates(*m->file, m->tokenizer->vocab()),
      options.chat_template);
  if (!chat.ok()) return chat.status();
  m->chat_template = std::move(*chat);
  m->load_seconds.file = since(start);
  start = Clock::now();
  engine::TransformerOptions t;
  t.weights = options.weights;
  t.max_batch_tokens = options.engine.max_batch_tokens;
  t.max_context = options.ctx_size;
  t.num_threads = options.engine.num_threads;
  t.max_logit_rows = options.engine.max_running;
  t.kernel_choice_file = options.kernel_choice_file;
  absl::StatusOr<std::unique_ptr<engine::Transformer>> model;
  // Off the calling thread, so that no OpenMP team stays on it (see
  // RunInTransientOpenMpTeam).
  RunInTransientOpenMpTeam(options.engine.num_threads, [&] {
    model = engine::Transformer::Load(*m->file, t);
  });
  if (!model.ok()) return model.status();
  m->load_seconds.kernel_choice = (*model)->kernel_choice_seconds();
  m->load_seconds.weights = since(start) - m->load_seconds.kernel_choice;
  start = Clock::now();
  auto eng = engine::Engine::Create(name, std::move(*model), m->tokenizer.get(),
                                    options.engine, observer);
  if (!eng.ok()) return eng.status();
  m->engine = std::move(*eng);
  m->load_seconds.engine = since(start);
  m->constraints =
      std::make_unique<engine::constrained::ConstraintCache>(*m->tokenizer);
  models_.push_back(std::move(m));
  return models_.back().get();
}

absl::StatusOr<ServedModel*> ModelRegistry::Find(
    const std::string& name) const {
  if (!ready()) return absl::UnavailableError("models are still loading");
  if (models_.empty()) return absl::UnavailableError("no model is loaded");
  if (name.empty()) return models_.front().get();
  for (const auto& m : models_) {
    if (m->name == name) return m.get();
  }
  std::vector<std::string> names;
  for (const auto& m : models_) names.push_back(m->name);
  return absl::NotFoundError(absl::StrCat(
      "model '", name, "' not found; loaded: ", absl::StrJoin(names, ", ")));
}

void ModelRegistry::BeginDrain() {
  for (auto& m : models_) m->engine->BeginDrain();
}

int64_t ModelRegistry::InFlight() const {
  int64_t n = 0;
  for (const auto& m : models_) n += m->engine->InFlight();
  return n;
}

void ModelRegistry::StopAll() {
  for (auto& m : models_) m->engine->Stop();
}

}  // namespace lumen::server
