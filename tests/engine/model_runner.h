#pragma once
// Helpers for engine tests: load a model, and run sequences through it step
// by step with a trivial block allocator (what the scheduler does in lumend).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/gguf/gguf_file.h"
#include "engine/kv_cache.h"
#include "engine/model/transformer.h"
#include "tools/synth/synth_model.h"

namespace lumen::testing {

std::unique_ptr<engine::GgufFile> OpenModel(const std::string& path);

// Writes a tiny random model (width 64, 3 layers, 4 heads of which 2 KV
// heads, ffn 96, context 256, llama SPM vocabulary, seed 1) after `edit`
// adjusts the options; returns its path in a fresh directory.
std::string SynthTinyModel(
    const std::function<void(tools::SynthOptions&)>& edit = nullptr);

// Kernel crossover not measured (default choice).
std::unique_ptr<engine::Transformer> LoadModel(const engine::GgufFile& f,
                                               engine::WeightMode mode,
                                               int64_t max_batch_tokens = 256,
                                               int64_t max_context = 512);

class Runner {
 public:
  // Sequences 0..num_seqs-1, each owning blocks_per_seq interleaved blocks
  // of a cache of `element`s.
  Runner(engine::Transformer* model, int num_seqs, int blocks_per_seq,
         engine::KvElement element = engine::KvElement::kF32);

  // Sets the LoRA adapter of a sequence (nullptr: the base model).
  void SetAdapter(int seq, const engine::LoraAdapter* adapter) {
    adapters_[seq] = adapter;
  }
  // One step: each (sequence, tokens) pair appends tokens; returns the last
  // token's logits per pair.
  std::vector<std::vector<float>> Step(
      const std::vector<std::pair<int, std::vector<int32_t>>>& work);

 private:
  engine::Transformer* model_;
  std::unique_ptr<engine::KvCache> cache_;
  std::vector<std::vector<int32_t>> tables_;
  std::vector<int32_t> positions_;
  std::vector<const engine::LoraAdapter*> adapters_;
};

int32_t Argmax(const std::vector<float>& v);

// The prompt, then `steps` greedy tokens, one sequence alone.
std::vector<int32_t> GreedyAlone(engine::Transformer* m,
                                 const std::vector<int32_t>& prompt, int steps,
                                 const engine::LoraAdapter* adapter = nullptr);

}  // namespace lumen::testing
