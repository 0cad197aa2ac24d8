#pragma once
// AdapterRegistry: the LoRA adapters lumend serves, by name, each bound to
// one base model. Loaded at start (--lora) or at run time (Admin), looked up
// by RPC threads for every request that names one. A request holds its
// adapter (shared_ptr) until it ends, so unloading removes the name at once
// and the adapter's memory goes when its last request finishes.
// Thread-safe.

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
  // What Remove leaves: the model it served and a handle that expires when
  // no request uses the adapter any more.
  struct Removed {
    std::string model;
    std::weak_ptr<const engine::LoraAdapter> handle;
  };
  // Removes the name; NotFound when not loaded.
  absl::StatusOr<Removed> Remove(const std::string& name);
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
