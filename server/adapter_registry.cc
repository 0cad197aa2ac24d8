#include "server/adapter_registry.h"

#include <cctype>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/gguf/gguf_file.h"

namespace lumen::server {

namespace {

// Called when an adapter's last reference goes; set when it is unloaded.
struct ReleaseHook {
  absl::Mutex mu;
  std::function<void()> callback ABSL_GUARDED_BY(mu);
};

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
          c == '.')) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<std::pair<std::string, std::string>> ParseLoraFlag(
    const std::string& flag) {
  const size_t eq = flag.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == flag.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--lora '", flag, "' is not NAME=PATH"));
  }
  return std::make_pair(flag.substr(0, eq), flag.substr(eq + 1));
}

absl::StatusOr<AdapterEntry> AdapterRegistry::Load(const std::string& name,
                                                   const std::string& path,
                                                   const std::string& model) {
  if (!ValidName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("adapter name '", name,
                     "' must be 1-64 letters, digits, '-', '_' or '.'"));
  }
  {
    absl::MutexLock lock(&mu_);
    if (adapters_.contains(name)) {
      return absl::AlreadyExistsError(
          absl::StrCat("adapter '", name, "' is already loaded"));
    }
  }
  // Not ModelRegistry::Find: --lora adapters load before lumend is ready.
  if (models_->models().empty()) {
    return absl::UnavailableError("models are still loading");
  }
  const ServedModel* served = nullptr;
  for (const auto& m : models_->models()) {
    if (model.empty() ? served == nullptr : m->name == model) served = m.get();
  }
  if (served == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("model '", model, "' not found for adapter '", name, "'"));
  }
  auto file = engine::GgufFile::Open(path);
  if (!file.ok()) return file.status();
  auto adapter =
      engine::LoraAdapter::Load(**file, served->engine->model().config());
  if (!adapter.ok()) {
    return absl::Status(
        adapter.status().code(),
        absl::StrCat("adapter ", path, ": ", adapter.status().message()));
  }
  // The shared handle's deleter frees the adapter and tells whoever
  // unloaded it that no request holds it any more.
  auto hook = std::make_shared<ReleaseHook>();
  const engine::LoraAdapter* raw = adapter->get();
  std::shared_ptr<const engine::LoraAdapter> handle(
      raw, [owned = std::shared_ptr<engine::LoraAdapter>(std::move(*adapter)),
            hook](const engine::LoraAdapter*) mutable {
        owned.reset();
        std::function<void()> callback;
        {
          absl::MutexLock lock(&hook->mu);
          callback = std::move(hook->callback);
        }
        if (callback) callback();
      });
  AdapterEntry entry{name, path, served->name, std::move(handle), hook};
  absl::MutexLock lock(&mu_);
  if (!adapters_.emplace(name, entry).second) {
    return absl::AlreadyExistsError(
        absl::StrCat("adapter '", name, "' is already loaded"));
  }
  return entry;
}

absl::Status AdapterRegistry::Remove(
    const std::string& name,
    std::function<void(const std::string& model)> on_released) {
  AdapterEntry entry;
  {
    absl::MutexLock lock(&mu_);
    auto it = adapters_.find(name);
    if (it == adapters_.end()) {
      return absl::NotFoundError(
          absl::StrCat("adapter '", name, "' is not loaded"));
    }
    entry = std::move(it->second);
    adapters_.erase(it);
  }
  auto hook = std::static_pointer_cast<ReleaseHook>(entry.release_hook);
  {
    absl::MutexLock lock(&hook->mu);
    hook->callback = [on_released = std::move(on_released),
                      model = entry.model] { on_released(model); };
  }
  // Dropping the registry's reference runs the hook now if no request holds
  // the adapter.
  entry.adapter.reset();
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const engine::LoraAdapter>>
AdapterRegistry::Find(const std::string& name, const std::string& model) const {
  absl::MutexLock lock(&mu_);
  auto it = adapters_.find(name);
  if (it == adapters_.end()) {
    std::vector<std::string> names;
    for (const auto& [n, e] : adapters_) names.push_back(n);
    return absl::NotFoundError(
        absl::StrCat("adapter '", name, "' not found; loaded: ",
                     names.empty() ? "none" : absl::StrJoin(names, ", ")));
  }
  if (it->second.model != model) {
    return absl::NotFoundError(
        absl::StrCat("adapter '", name, "' belongs to model '",
                     it->second.model, "', not '", model, "'"));
  }
  return it->second.adapter;
}

std::vector<AdapterEntry> AdapterRegistry::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<AdapterEntry> out;
  for (const auto& [n, e] : adapters_) out.push_back(e);
  return out;
}

}  // namespace lumen::server
