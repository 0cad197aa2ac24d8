// `lumen model generate FILE --prompt TEXT --max-tokens N [--temperature T]
// [--seed S] [--weights f32|int8] [--threads N] [--ctx-size N] [--ids]`:
// generation straight on the engine, one sequence, no daemon (like
// llama.cpp's llama-simple). Completion text on stdout, speed on stderr.
// --ctx-size is the serving context, as lumend's: it also picks Phi-3's
// LongRoPE factors the way llama.cpp does.

#include <omp.h>

#include <chrono>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "base/flags.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kv_cache.h"
#include "engine/model/transformer.h"
#include "engine/sampler.h"
#include "engine/tokenizer/tokenizer.h"
#include "tools/lumen/commands.h"

namespace lumen::tools {

int ModelGenerate(const Args& args) {
  std::string prompt, weights = "auto", kv_type = "f16";
  int64_t max_tokens = 128, seed = 0, threads = 0, ctx_size = 0;
  double temperature = 0.0;
  bool print_ids = false;
  FlagSet flags(
      "lumen model generate FILE --prompt TEXT --max-tokens N [--temperature "
      "T] "
      "[--seed S] [--weights auto|f32|int8] [--threads N] [--ctx-size N] "
      "[--kv-cache-type f16|f32|q8_0] [--ids]");
  flags.String("prompt", &prompt, "prompt text; empty starts from BOS alone");
  flags.Int("max-tokens", &max_tokens, "tokens to generate at most");
  flags.Double("temperature", &temperature, "0 = greedy");
  flags.Int("seed", &seed, "sampling seed");
  flags.String(
      "weights", &weights,
      "auto (each tensor in its own type), f32 (dequantize all) or int8 "
      "(also quantize f32/f16/bf16 matrices)");
  flags.Int("threads", &threads, "compute threads (0 = all cores)");
  flags.Int("ctx-size", &ctx_size,
            "context of the sequence, prompt included (0 = the model's); "
            "also chooses LongRoPE factors, as in llama.cpp");
  flags.String("kv-cache-type", &kv_type,
               "KV cache element type: f16 (as lumend's default), f32 or q8_0");
  flags.Bool("ids", &print_ids,
             "end with a line holding the generated ids as JSON");
  if (auto rc = ParseOrHelp(&flags, args)) return *rc;
  if (flags.positional().size() != 1)
    return Fail("expected one FILE\n" + flags.Help(), 2);
  if (max_tokens <= 0) return Fail("--max-tokens must be positive", 2);
  if (temperature < 0) return Fail("--temperature must be >= 0", 2);
  if (ctx_size < 0) return Fail("--ctx-size must be >= 0", 2);
  auto mode = engine::ParseWeightMode(weights);
  if (!mode.ok()) return Fail(std::string(mode.status().message()), 2);
  auto kv_element = engine::ParseKvElement(kv_type);
  if (!kv_element.ok())
    return Fail(std::string(kv_element.status().message()), 2);
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));

  auto t_load = std::chrono::steady_clock::now();
  auto file = engine::GgufFile::Open(flags.positional()[0]);
  if (!file.ok()) return Fail(std::string(file.status().message()));
  auto tokenizer = engine::Tokenizer::FromGguf(**file);
  if (!tokenizer.ok()) return Fail(std::string(tokenizer.status().message()));
  std::vector<int32_t> tokens = (*tokenizer)->Encode(prompt, true, false);
  const engine::Vocab& vocab = (*tokenizer)->vocab();
  if (tokens.empty()) tokens.push_back(vocab.bos >= 0 ? vocab.bos : 0);

  engine::TransformerOptions options;
  options.weights = *mode;
  options.max_batch_tokens = 256;
  options.max_context = ctx_size;
  options.measure_crossover = false;
  auto model = engine::Transformer::Load(**file, options);
  if (!model.ok()) return Fail(std::string(model.status().message()));
  engine::Transformer& m = **model;
  const int64_t ctx = m.max_context();
  if (static_cast<int64_t>(tokens.size()) >= ctx) {
    return Fail(absl::StrCat("prompt of ", tokens.size(),
                             " tokens does not fit the context of ", ctx));
  }
  const int64_t total = std::min<int64_t>(ctx, tokens.size() + max_tokens);
  engine::KvCacheShape shape{m.config().n_layers, m.config().n_kv_heads,
                             m.config().head_dim, 16,
                             (total + 15) / 16,   *kv_element};
  auto cache = engine::KvCache::Create(shape);
  if (!cache.ok()) return Fail(std::string(cache.status().message()));
  std::vector<int32_t> table(shape.num_blocks);
  for (int64_t i = 0; i < shape.num_blocks; ++i)
    table[i] = static_cast<int32_t>(i);
  std::vector<float> logits(m.config().n_vocab);
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load)
          .count();

  // Prefill in chunks of max_batch_tokens.
  auto t0 = std::chrono::steady_clock::now();
  int64_t done = 0;
  while (done < static_cast<int64_t>(tokens.size())) {
    const int64_t chunk =
        std::min<int64_t>(m.max_batch_tokens(), tokens.size() - done);
    engine::BatchSequence seq{
        static_cast<int32_t>(chunk), static_cast<int32_t>(done), table,
        done + chunk == static_cast<int64_t>(tokens.size())};
    engine::Batch batch{std::span(tokens).subspan(done, chunk),
                        std::span(&seq, 1)};
    if (absl::Status s = m.Forward(batch, cache->get(), logits); !s.ok()) {
      return Fail(std::string(s.message()));
    }
    done += chunk;
  }
  auto t1 = std::chrono::steady_clock::now();

  engine::SamplingParams params;
  params.temperature = static_cast<float>(temperature);
  params.seed = static_cast<uint64_t>(seed);
  engine::SamplerState state(params);
  engine::Sampler sampler;
  engine::StreamingDetokenizer detok(**tokenizer,
                                     /*at_text_start=*/prompt.empty());
  std::vector<int32_t> generated;
  int64_t pos = static_cast<int64_t>(tokens.size());
  while (static_cast<int64_t>(generated.size()) < max_tokens) {
    const int32_t next = sampler.Sample(logits, &state);
    if ((*tokenizer)->IsEndOfGeneration(next)) break;
    generated.push_back(next);
    const std::string piece = detok.Push(next);
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    if (pos >= total) break;
    engine::BatchSequence seq{1, static_cast<int32_t>(pos), table, true};
    engine::Batch batch{std::span(&generated.back(), 1), std::span(&seq, 1)};
    if (absl::Status s = m.Forward(batch, cache->get(), logits); !s.ok()) {
      return Fail(std::string(s.message()));
    }
    ++pos;
  }
  const std::string rest = detok.Flush();
  std::fwrite(rest.data(), 1, rest.size(), stdout);
  auto t2 = std::chrono::steady_clock::now();
  if (print_ids) {
    std::string ids = "\n[";
    for (size_t i = 0; i < generated.size(); ++i)
      absl::StrAppend(&ids, i ? ", " : "", generated[i]);
    std::printf("%s]\n", ids.c_str());
  } else {
    std::printf("\n");
  }
  const double pre_s = std::chrono::duration<double>(t1 - t0).count();
  const double gen_s = std::chrono::duration<double>(t2 - t1).count();
  std::fprintf(stderr, "%s, context %lld; rope: %s\n", m.config().arch.c_str(),
               (long long)ctx, m.rope_summary().c_str());
  std::fprintf(stderr,
               "load %.2f s (%s weights, %.1f MiB resident); prompt %zu tokens "
               "in %.1f ms "
               "(%.1f tokens/s); generated %zu tokens in %.1f ms (%.1f "
               "tokens/s); %d threads\n",
               load_s, m.WeightsSummary().c_str(),
               m.resident_bytes().total() / 1048576.0, tokens.size(),
               pre_s * 1e3, tokens.size() / pre_s, generated.size(),
               gen_s * 1e3, generated.size() / gen_s, omp_get_max_threads());
  return 0;
}

}  // namespace lumen::tools
