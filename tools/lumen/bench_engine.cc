// `lumen bench engine --model FILE [--weights auto|f32|int8] [--threads N]
// [--only prefill|decode] [--seqs LIST] [--json]`: prefill and decode
// throughput of the engine alone, each figure beside its roofline (decode:
// weight bytes per step over the measured bandwidth; prefill: matmul FLOPs
// per token over the measured FP32 peak) and with the time split between
// matmuls, attention and the rest.

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/flags.h"
#include "base/json_writer.h"
#include "base/openmp_wait.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kernels/small_gemm_isa.h"
#include "engine/model/lora_adapter.h"
#include "engine/model/transformer.h"
#include "tools/lumen/commands.h"
#include "tools/lumen/roofline.h"

namespace lumen::tools {

namespace {

using Clock = std::chrono::steady_clock;

struct Bench {
  engine::Transformer* model;
  std::vector<float> logits;
  const engine::LoraAdapter* adapter = nullptr;  // every sequence uses it

  // Prefills `seqs` sequences to `context` tokens each (in chunks that fit
  // max_batch_tokens) into `cache`, sequence s owning blocks [s*B, (s+1)*B).
  absl::Status Prefill(engine::KvCache* cache, int seqs, int context,
                       int blocks_per_seq,
                       std::vector<std::vector<int32_t>>* tables) {
    tables->assign(seqs, {});
    for (int s = 0; s < seqs; ++s) {
      for (int b = 0; b < blocks_per_seq; ++b)
        (*tables)[s].push_back(s * blocks_per_seq + b);
      int done = 0;
      while (done < context) {
        const int n = std::min<int>(model->max_batch_tokens(), context - done);
        std::vector<int32_t> tokens(n);
        // Ordinary ids inside the vocabulary, however small.
        const int64_t vocab = model->config().n_vocab;
        for (int i = 0; i < n; ++i) {
          tokens[i] = static_cast<int32_t>(
              (std::min<int64_t>(100, vocab / 2) + (s * 31 + done + i) % 1000) %
              vocab);
        }
        engine::BatchSequence seq{n, done, (*tables)[s], true, adapter};
        if (absl::Status st =
                model->Forward({tokens, std::span(&seq, 1)}, cache, logits);
            !st.ok()) {
          return st;
        }
        done += n;
      }
    }
    return absl::OkStatus();
  }
};

// "1,4,16" -> {1, 4, 16}; every entry a positive count.
absl::StatusOr<std::vector<int>> ParseSeqs(const std::string& list) {
  std::vector<int> seqs;
  for (absl::string_view part : absl::StrSplit(list, ',')) {
    int n = 0;
    if (!absl::SimpleAtoi(part, &n) || n < 1 || n > 256) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--seqs: '", part, "' is not a sequence count from 1 to 256"));
    }
    seqs.push_back(n);
  }
  return seqs;
}

std::string ProfileSplit(const engine::ForwardProfile& p, double secs) {
  char text[96];
  std::snprintf(
      text, sizeof text, "matmul %.0f%%, attention %.0f%%, other %.0f%%",
      100 * p.matmul / secs, 100 * p.attention / secs, 100 * p.other / secs);
  return text;
}

}  // namespace

int BenchEngine(const Args& args) {
  std::string model_path, weights = "auto", lora_path, kv_type = "f16",
                          kernel_choice_file, only = "all",
                          seqs_list = "1,4,16,64";
  int64_t threads = 2, steps = 16;
  bool json = false;
  FlagSet flags(
      "lumen bench engine --model FILE [--weights auto|f32|int8] [--threads N] "
      "[--kv-cache-type f16|f32|q8_0] [--lora ADAPTER.gguf] "
      "[--kernel-choice-file FILE] [--only prefill|decode] [--seqs LIST] "
      "[--json]");
  flags.String("model", &model_path, "GGUF model");
  flags.String("weights", &weights, "auto, f32 or int8");
  flags.Int("threads", &threads, "compute threads");
  flags.Int("steps", &steps, "decode steps timed per configuration");
  flags.Bool("json", &json, "print one JSON object");
  flags.String("kv-cache-type", &kv_type,
               "KV cache element: f16 (lumend's default), f32 or q8_0");
  flags.String("lora", &lora_path,
               "LoRA adapter applied to every sequence (measures its cost)");
  flags.String("only", &only,
               "all, prefill (prompts of 128 and 512 tokens) or decode");
  flags.String("seqs", &seqs_list,
               "comma-separated sequence counts of the decode figures");
  flags.String("kernel-choice-file", &kernel_choice_file,
               "fp32 kernel crossovers measured before on this machine, read "
               "and updated as lumend does with its --data-dir/"
               "kernel-choice.txt (empty: timed at every load; AVX2 CPUs "
               "only: AVX-512 runs fp32 panels and times nothing)");
  if (auto rc = ParseOrHelp(&flags, args)) return *rc;
  if (model_path.empty())
    return Fail("--model is required\n" + flags.Help(), 2);
  auto mode = engine::ParseWeightMode(weights);
  if (!mode.ok()) return Fail(std::string(mode.status().message()), 2);
  if (only != "all" && only != "prefill" && only != "decode") {
    return Fail("--only must be all, prefill or decode, not '" + only + "'", 2);
  }
  auto decode_seqs = ParseSeqs(seqs_list);
  if (!decode_seqs.ok())
    return Fail(std::string(decode_seqs.status().message()), 2);
  auto kv_element = engine::ParseKvElement(kv_type);
  if (!kv_element.ok())
    return Fail(std::string(kv_element.status().message()), 2);
  omp_set_num_threads(static_cast<int>(threads));

  const double bandwidth = MeasureReadBandwidthGBs();
  const double peak = MeasurePeakGflops();

  auto file = engine::GgufFile::Open(model_path);
  if (!file.ok()) return Fail(std::string(file.status().message()));
  engine::TransformerOptions options;
  options.weights = *mode;
  options.max_batch_tokens = 512;
  options.max_context = 640;
  options.kernel_choice_file = kernel_choice_file;
  auto t_load = Clock::now();
  auto model = engine::Transformer::Load(**file, options);
  if (!model.ok()) return Fail(std::string(model.status().message()));
  const double load_s =
      std::chrono::duration<double>(Clock::now() - t_load).count();
  engine::Transformer& m = **model;
  const engine::ModelConfig& c = m.config();
  // Every decode sequence asks for logits.
  const int max_seqs =
      std::max(1, *std::max_element(decode_seqs->begin(), decode_seqs->end()));
  Bench bench{&m, std::vector<float>(int64_t{max_seqs} * c.n_vocab)};
  std::unique_ptr<engine::LoraAdapter> adapter;
  if (!lora_path.empty()) {
    auto lora_file = engine::GgufFile::Open(lora_path);
    if (!lora_file.ok()) return Fail(std::string(lora_file.status().message()));
    auto a = engine::LoraAdapter::Load(**lora_file, c);
    if (!a.ok()) return Fail(std::string(a.status().message()));
    adapter = std::move(*a);
    bench.adapter = adapter.get();
  }

  const double weight_bytes = m.weight_bytes_per_step();
  const double flops_per_token = 2.0 * m.matmul_macs_per_token();
  if (!json) {
    std::printf(
        "model %s: weights %s, %.1f MiB resident, %lld threads, KV cache %s, "
        "OpenMP wait: %s\n",
        model_path.c_str(), m.WeightsSummary().c_str(),
        m.resident_bytes().total() / 1048576.0, (long long)threads,
        engine::KvElementName(*kv_element), OpenMpWaitPolicy());
    const bool avx512 = engine::kernels::ActiveSmallGemmIsa() ==
                        engine::kernels::SmallGemmIsa::kAvx512;
    std::printf(
        "machine: read bandwidth %.1f GB/s, FP32 peak %.0f GFLOP/s (%s); load "
        "%.2f s (kernel choice %s)\n",
        bandwidth, peak, avx512 ? "AVX-512" : "AVX2", load_s,
        m.kernel_choice_source().c_str());
    if (m.int8()) {
      std::printf(
          "quantized: prefill fractions are of the fp32 FLOP roofline; int8 "
          "dot products can pass it\n");
    }
    std::printf("kernels: %s\n", m.KernelChoiceSummary().c_str());
    if (c.moe()) {
      std::printf(
          "experts: %lld per layer, %lld per token (weights and FLOPs below "
          "count one token's experts; batched decode reads more)\n",
          (long long)c.n_experts, (long long)c.n_experts_used);
    }
    if (adapter) {
      std::printf("adapter: %s, rank %lld, targets %s, %lld parameters\n",
                  lora_path.c_str(), (long long)adapter->max_rank(),
                  adapter->TargetSummary().c_str(),
                  (long long)adapter->num_parameters());
    }
    std::printf(
        "weights read per decode step %.1f MB; matmul FLOPs per token %.2f "
        "G\n\n",
        weight_bytes / 1e6, flops_per_token / 1e9);
    std::printf("%-28s %12s %12s %10s\n", "", "tokens/s", "roofline",
                "fraction");
  }

  std::map<std::string, double> prefill, decode128, decode512;
  const int blocks_per_seq = 640 / 16;
  for (int prompt : {128, 512}) {
    if (only == "decode") break;
    auto cache = engine::KvCache::Create({c.n_layers, c.n_kv_heads, c.head_dim,
                                          16, blocks_per_seq, *kv_element});
    if (!cache.ok()) return Fail(std::string(cache.status().message()));
    std::vector<std::vector<int32_t>> tables;
    double best = 1e30;
    engine::ForwardProfile best_profile;
    for (int rep = 0; rep < 3; ++rep) {
      m.profile().Reset();
      auto t0 = Clock::now();
      if (absl::Status s =
              bench.Prefill(cache->get(), 1, prompt, blocks_per_seq, &tables);
          !s.ok()) {
        return Fail(std::string(s.message()));
      }
      const double secs =
          std::chrono::duration<double>(Clock::now() - t0).count();
      if (secs < best) {
        best = secs;
        best_profile = m.profile();
      }
    }
    const double tps = prompt / best;
    // Prefill FLOPs: every layer matrix for every token, the head for the
    // last token only, and causal attention (QK and PV) over the prompt.
    const double attn_macs =
        double(c.n_layers) * c.n_heads * c.head_dim * prompt * (prompt + 1);
    const double prefill_flops =
        2.0 *
        (double(m.matmul_macs_per_token() - m.head_macs_per_token()) * prompt +
         m.head_macs_per_token() + attn_macs);
    const double roof = peak * 1e9 * prompt / prefill_flops;
    prefill[absl::StrCat(prompt)] = tps;
    if (!json) {
      std::printf("%-28s %12.1f %12.1f %9.0f%%   %s\n",
                  absl::StrCat("prefill ", prompt, " tokens").c_str(), tps,
                  roof, 100 * tps / roof,
                  ProfileSplit(best_profile, best).c_str());
    }
  }
  for (int context : {128, 512}) {
    if (only == "prefill") break;
    for (int seqs : *decode_seqs) {
      auto cache = engine::KvCache::Create(
          {c.n_layers, c.n_kv_heads, c.head_dim, 16,
           int64_t{seqs} * blocks_per_seq, *kv_element});
      if (!cache.ok()) return Fail(std::string(cache.status().message()));
      // Steady state: a serving cache's blocks have been written before,
      // so the first writes' page faults are not part of a decode step.
      if (absl::Status s = (*cache)->Prefault(); !s.ok() && !json) {
        std::printf("(%s: decode steps include first-write page faults)\n",
                    std::string(s.message()).c_str());
      }
      std::vector<std::vector<int32_t>> tables;
      if (absl::Status s = bench.Prefill(cache->get(), seqs, context,
                                         blocks_per_seq, &tables);
          !s.ok()) {
        return Fail(std::string(s.message()));
      }
      std::vector<int32_t> tokens(seqs, 42);
      std::vector<engine::BatchSequence> batch(seqs);
      m.profile().Reset();
      auto t0 = Clock::now();
      for (int step = 0; step < steps; ++step) {
        for (int s = 0; s < seqs; ++s)
          batch[s] = {1, context + step, tables[s], true, bench.adapter};
        if (absl::Status st =
                m.Forward({tokens, batch}, cache->get(), bench.logits);
            !st.ok()) {
          return Fail(std::string(st.message()));
        }
      }
      const double secs =
          std::chrono::duration<double>(Clock::now() - t0).count();
      const double tps = seqs * steps / secs;
      // Per step: all weights once, plus every sequence's KV cache.
      const double kv_bytes = double(seqs) * (context + steps / 2) *
                              c.n_layers * 2 * c.n_kv_heads *
                              engine::KvRowBytes(*kv_element, c.head_dim);
      const double roof = seqs * bandwidth * 1e9 / (weight_bytes + kv_bytes);
      (context == 128 ? decode128 : decode512)[absl::StrCat(seqs)] = tps;
      if (!json) {
        std::printf(
            "%-28s %12.1f %12.1f %9.0f%%   step %.2f ms: %s\n",
            absl::StrCat("decode ", seqs, " seq @ ctx ", context).c_str(), tps,
            roof, 100 * tps / roof, 1e3 * secs / steps,
            ProfileSplit(m.profile(), secs).c_str());
      }
    }
  }
  if (json) {
    JsonWriter w;
    w.BeginObject();
    w.Key("model").String(model_path);
    w.Key("weights").String(m.WeightsSummary());
    w.Key("threads").Int(threads);
    w.Key("kv_cache_type").String(engine::KvElementName(*kv_element));
    w.Key("prefill_tokens_per_s").BeginObject();
    for (auto& [k, v] : prefill) w.Key(k).Double(v);
    w.EndObject();
    w.Key("decode_tokens_per_s").BeginObject();
    for (auto& [k, v] : decode128) w.Key(k).Double(v);
    w.EndObject();
    w.Key("decode_tokens_per_s_ctx512").BeginObject();
    for (auto& [k, v] : decode512) w.Key(k).Double(v);
    w.EndObject();
    w.Key("bandwidth_gb_s").Double(bandwidth);
    w.Key("peak_gflops").Double(peak);
    w.Key("weight_bytes_per_step").Double(weight_bytes);
    w.Key("flops_per_token").Double(flops_per_token);
    w.EndObject();
    std::printf("%s\n", w.str().c_str());
  }
  return 0;
}

}  // namespace lumen::tools
