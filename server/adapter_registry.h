#pragma once
// AdapterRegistry: the LoRA adapters lumend serves, by name, each bound to
// one base model. Loaded at start (--lora) or at run time (Admin), looked up
// by RPC threads for every request that names one. A request holds its
// adapter (shared_ptr) until it ends, so unloading removes the name at once
// and the adapter's memory goes when its last request finishes; the unloader
// is called back then (no thread waits for it). Thread-safe.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/model/lora_adapter.h"
#include "server/model_registry.h"

namespace lumen::server {

struct AdapterEntry {
  std::string name;
  std::string path;
  std::string model;
  std::shared_ptr<const engine::LoraAdapter> adapter;
  std::shared_ptr<void> release_hook;  // runs Remove's callback (private)
};

class AdapterRegistry {
 public:
  explicit AdapterRegistry(const ModelRegistry* models) : models_(models) {}

  // Reads and validates `path` against `model` (empty: the default model)
  // and registers it. InvalidArgument for a bad name or a file that does not
  // fit; NotFound for a missing file or model; AlreadyExists for a taken name.
  absl::StatusOr<AdapterEntry> Load(const std::string& name,
                                    const std::string& path,
                                    const std::string& model);
  // Removes the name at once (NotFound when not loaded) and calls
  // `on_released(model)` when no request holds the adapter any more: at
  // once when none does, else on the thread that drops the last reference
  // (an engine or output thread), so it must be quick and non-blocking.
  absl::Status Remove(
      const std::string& name,
      std::function<void(const std::string& model)> on_released);
  // The adapter for a request on `model`. NotFound names what is loaded.
  absl::StatusOr<std::shared_ptr<const engine::LoraAdapter>> Find(
      const std::string& name, const std::string& model) const;
  std::vector<AdapterEntry> List() const;

 private:
  const ModelRegistry* models_;
  mutable absl::Mutex mu_;
  std::map<std::string, AdapterEntry> adapters_ ABSL_GUARDED_BY(mu_);
};

// "NAME=PATH" of --lora; InvalidArgument otherwise.
absl::StatusOr<std::pair<std::string, std::string>> ParseLoraFlag(
    const std::string& flag);

}  // namespace lumen::server
