// gemm_bench: GFLOP/s of the engine's matrix kernels (small-M fp32, oneDNN
// fp32, fp32 panels on AVX-512, packed GGUF types), the decode attention
// kernel's KV read rate and the prefill attention kernel's FLOP rate, on the
// shapes of the 110M synth model, with weights cold as in a real step (each
// call uses the next of 12 copies, like 12 layers).
//
//   build/bin/gemm_bench [--threads 2] [--reps 20] [--hot] [--packed_only]
//                        [--attention_only] [--cpu_time] [--copies 12]
//
// --cpu_time times by process CPU time instead of wall time: on a machine
// other jobs share, with --threads 1, it still compares kernels fairly.

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/flags.h"
#include "base/openmp_wait.h"
#include "base/page_array.h"
#include "engine/kernels/cpu_ops.h"
#include "engine/kernels/dnnl_matmul.h"
#include "engine/kernels/f32_panel.h"
#include "engine/kernels/paged_attention.h"
#include "engine/kernels/small_gemm.h"
#include "engine/kernels/small_gemm_isa.h"
#include "engine/kv_cache.h"
#include "engine/quant/quant_kernels.h"
#include "engine/quant/quant_type.h"

namespace {

using namespace lumen::engine::kernels;
using Clock = std::chrono::steady_clock;

// Wall time, or the CPU time of the whole process.
Clock::time_point Now(bool cpu_time) {
  if (!cpu_time) return Clock::now();
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return Clock::time_point(std::chrono::seconds(ts.tv_sec) +
                           std::chrono::nanoseconds(ts.tv_nsec));
}

struct Shape {
  const char* name;
  int64_t N, K;
};

// A paged cache of `blocks` blocks per layer, every row random.
absl::StatusOr<std::unique_ptr<lumen::engine::KvCache>> RandomCache(
    lumen::engine::KvElement element, int64_t layers, int64_t kv_heads,
    int64_t hd, int64_t bs, int64_t blocks, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 0.02f);
  auto cache = lumen::engine::KvCache::Create(
      {layers, kv_heads, hd, bs, blocks, element});
  if (!cache.ok()) return cache.status();
  lumen::engine::KvCache& kv = **cache;
  std::vector<float> row(hd);
  auto fill = [&](uint8_t* keys_or_values) {
    for (int64_t h = 0; h < kv_heads; ++h) {
      for (int64_t slot = 0; slot < bs; ++slot) {
        for (float& v : row) v = normal(rng);
        lumen::engine::StoreKvRow(element, row.data(), hd,
                                  kv.Row(keys_or_values, h, slot));
      }
    }
  };
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t l = 0; l < layers; ++l) {
      fill(kv.Keys<uint8_t>(b, l));
      fill(kv.Values<uint8_t>(b, l));
    }
  }
  return cache;
}

// Attention over 12 layers of a paged cache, 12 query heads of 64. Decode:
// 16 sequences, one query token each at position ctx - 1, each sequence's
// blocks in order as `lumen bench engine` lays them out (a block's layers
// lie together, so a layer's consecutive blocks are still 24 layer-blocks
// apart); figure: KV read rate. Prefill: one sequence's chunk of `chunk`
// tokens ending at position ctx - 1 (a 512-token prompt whole, its last
// 128-token chunk, and the last 512 of 2048 with 3 query heads per KV head,
// whose tiles' score rows outgrow L2); figure: the QK and PV FLOP rate.
void BenchAttention(lumen::engine::KvElement element, bool prefill,
                    int64_t reps, bool cpu_time) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::printf("\n%-28s %10s %12s\n",
              absl::StrCat("attention ", lumen::engine::KvElementName(element),
                           prefill ? " (prefill)" : " (16 seqs)")
                  .c_str(),
              "ms/step", prefill ? "GFLOP/s" : "KV GB/s");
  struct Config {
    int64_t ctx, kv_heads, chunk;
  };
  // 12 query heads over 12 KV heads (the synth model), then over 4 (GQA).
  const std::vector<Config> configs =
      prefill ? std::vector<Config>{{512, 12, 512},
                                    {512, 12, 128},
                                    {512, 4, 512},
                                    {2048, 4, 512}}
              : std::vector<Config>{
                    {128, 12, 1}, {512, 12, 1}, {2048, 12, 1}, {512, 4, 1}};
  for (const Config& config : configs) {
    const int64_t ctx = config.ctx, kv_heads = config.kv_heads;
    const int64_t seqs = prefill ? 1 : 16, heads = 12, hd = 64, layers = 12,
                  bs = 16;
    const int64_t blocks_per_seq = (ctx + bs - 1) / bs;
    auto cache = RandomCache(element, layers, kv_heads, hd, bs,
                             seqs * blocks_per_seq, rng);
    if (!cache.ok()) {
      std::fprintf(stderr, "%s\n",
                   std::string(cache.status().message()).c_str());
      return;
    }
    std::vector<std::vector<int32_t>> tables(seqs);
    for (int64_t s = 0; s < seqs; ++s) {
      for (int64_t b = 0; b < blocks_per_seq; ++b)
        tables[s].push_back(static_cast<int32_t>(s * blocks_per_seq + b));
    }
    std::vector<AttentionQuery> queries;
    for (int64_t s = 0; s < seqs; ++s) {
      for (int64_t pos = ctx - config.chunk; pos < ctx; ++pos)
        queries.push_back({static_cast<int32_t>(pos), tables[s].data()});
    }
    const int64_t n = static_cast<int64_t>(queries.size());
    std::vector<float> q(n * heads * hd), out(n * heads * hd),
        scratch(omp_get_max_threads() *
                AttentionScratchPerThread({heads, kv_heads, hd, 0.125f}, ctx));
    for (float& v : q) v = normal(rng);
    const AttentionShape shape{heads, kv_heads, hd, 0.125f};
    auto step = [&] {
      for (int64_t l = 0; l < layers; ++l) {
        PagedAttention(q.data(), heads * hd, queries.data(), n, **cache, l,
                       shape, scratch.data(), omp_get_max_threads(), ctx,
                       out.data());
      }
    };
    step();
    const auto t0 = Now(cpu_time);
    for (int64_t r = 0; r < reps; ++r) step();
    const double sec =
        std::chrono::duration<double>(Now(cpu_time) - t0).count() / reps;
    double figure;
    if (prefill) {
      double keys = 0;  // (query, key) pairs over the chunk
      for (const AttentionQuery& query : queries) keys += query.position + 1;
      figure = 4.0 * keys * heads * hd * layers / sec / 1e9;
    } else {
      figure = double(seqs) * ctx * layers * 2 * kv_heads *
               (*cache)->row_bytes() / sec / 1e9;
    }
    std::printf(
        "%-28s %10.2f %12.1f\n",
        absl::StrCat("ctx ", ctx,
                     prefill ? absl::StrCat(", chunk ", config.chunk) : "",
                     kv_heads < heads ? ", 4 KV heads" : "")
            .c_str(),
        sec * 1e3, figure);
  }
}

void BenchAttentionKernels(bool prefill, int64_t reps, bool cpu_time) {
  for (auto element :
       {lumen::engine::KvElement::kF32, lumen::engine::KvElement::kF16,
        lumen::engine::KvElement::kQ8_0}) {
    BenchAttention(element, prefill, reps, cpu_time);
  }
}

}  // namespace

int main(int argc, char** argv) {
  lumen::UseLumenOpenMpWaitPolicy(argv);  // as lumend's kernels run
  int64_t threads = 2, reps = 20, copies = 12;
  bool hot = false, packed_only = false, cpu_time = false,
       attention_only = false;
  lumen::FlagSet flags(
      "gemm_bench [--threads N] [--reps R] [--hot] [--packed_only] "
      "[--attention_only] [--copies C] [--cpu_time]");
  flags.Bool("packed_only", &packed_only, "only the packed GGUF kernels");
  flags.Bool("attention_only", &attention_only,
             "only the attention kernels, decode and prefill (f32, f16 and "
             "q8_0 caches)");
  flags.Bool("cpu_time", &cpu_time, "time by process CPU time");
  flags.Int("threads", &threads, "OpenMP threads");
  flags.Int("reps", &reps, "calls per measurement (each on the next layer)");
  flags.Bool("hot", &hot, "reuse one weight copy (cache-resident weights)");
  flags.Int("copies", &copies,
            "weight copies cycled through (12 = a layer each; raise it until "
            "the copies outgrow the last-level cache to time DRAM reads)");
  if (auto s = flags.Parse(std::vector<std::string>(argv + 1, argv + argc));
      !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (copies < 1 || reps < 1 || threads < 1) {
    std::fprintf(stderr, "--copies, --reps and --threads must be >= 1\n");
    return 2;
  }
  omp_set_num_threads(static_cast<int>(threads));
  if (attention_only) {
    BenchAttentionKernels(/*prefill=*/false, reps, cpu_time);
    BenchAttentionKernels(/*prefill=*/true, reps, cpu_time);
    return 0;
  }
  const int kLayers = hot ? 1 : static_cast<int>(copies);
  const Shape shapes[] = {{"qkv", 2304, 768},
                          {"wo", 768, 768},
                          {"gate_up", 4096, 768},
                          {"down", 768, 2048}};
  const int64_t ms[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  // fp32 panels (f32_panel.h) are what the engine runs on AVX-512 CPUs.
  const bool panels = ActiveSmallGemmIsa() == SmallGemmIsa::kAvx512;
  std::printf("%-8s %4s %14s %14s %14s   (GFLOP/s, weights %s)\n", "shape", "M",
              "small f32", "oneDNN f32", "f32 panels", hot ? "hot" : "cold");
  for (const Shape& s : shapes) {
    if (packed_only) break;
    std::vector<std::vector<float>> w(kLayers);
    std::vector<lumen::PageArray<float>> panel(kLayers);
    for (int l = 0; l < kLayers; ++l) {
      w[l].resize(s.N * s.K);
      for (float& v : w[l]) v = normal(rng);
      if (panels) {
        auto zeros = lumen::PageArray<float>::Zeros(F32PanelFloats(s.N, s.K));
        if (!zeros.ok()) return 1;
        panel[l] = std::move(*zeros);
        auto filled = FillF32Panel(
            s.N, s.K,
            [&](int64_t first, int64_t count, float* out) {
              std::copy_n(w[l].data() + first * s.K, count * s.K, out);
              return absl::OkStatus();
            },
            panel[l].data());
        if (!filled.ok()) return 1;
      }
    }
    auto dnnl = DnnlMatmulF32::Create(s.K, s.N, nullptr);
    if (!dnnl.ok()) return 1;
    std::vector<float> x(256 * s.K), y(256 * s.N);
    for (float& v : x) v = normal(rng) * 50;
    for (int64_t M : ms) {
      auto measure = [&](auto&& call) {
        for (int l = 0; l < kLayers; ++l) call(l);  // warm-up
        const auto t0 = Now(cpu_time);
        for (int64_t r = 0; r < reps; ++r) call(static_cast<int>(r % kLayers));
        const double sec =
            std::chrono::duration<double>(Now(cpu_time) - t0).count() / reps;
        return 2.0 * M * s.N * s.K / sec / 1e9;
      };
      const double f32 = measure([&](int l) {
        SmallGemmF32(x.data(), M, s.K, w[l].data(), s.N, y.data());
      });
      const double dn = measure([&](int l) {
        (void)(*dnnl)->Run(x.data(), M, w[l].data(), y.data());
      });
      const double pf = !panels ? 0.0 : measure([&](int l) {
        avx512::F32PanelGemm(x.data(), M, s.K, panel[l].data(), s.N, y.data());
      });
      std::printf("%-8s %4lld %14.1f %14.1f %14.1f\n", s.name, (long long)M,
                  f32, dn, pf);
    }
  }
  // Packed GGUF weights (engine/quant): the AVX2 row-dot kernel, the AVX-512
  // kernel the engine runs (direct at M <= 4, else the panel) and the panel
  // alone, per type, and at M=1 the weight bytes read per second.
  const lumen::engine::GgmlType packed_types[] = {
      lumen::engine::GgmlType::kQ4_K, lumen::engine::GgmlType::kQ6_K,
      lumen::engine::GgmlType::kQ4_0, lumen::engine::GgmlType::kQ8_0};
  std::printf("\n%-8s %4s", "shape", "M");
  for (auto t : packed_types) {
    const std::string n = lumen::engine::GgmlTypeName(t);
    std::printf(" %8s rowdot %8s avx512 %8s panel", n.c_str(), n.c_str(),
                n.c_str());
  }
  std::printf("   (GFLOP/s; M=1 also weight GB/s)\n");
  // Packed models also keep the output head (vocab x hidden, Q6_K in a
  // Q4_K_M file) packed: a quarter of a 110M Q4_K_M file's bytes per token.
  const Shape packed_shapes[] = {
      shapes[0], shapes[1], shapes[2], shapes[3], {"head", 32000, 768}};
  for (const Shape& s : packed_shapes) {
    const bool head = s.N > 4096;
    // The head alone (14-20 MB a copy) is past the last-level cache.
    const int layers = head ? std::min(kLayers, 3) : kLayers;
    // The AVX2 kernel reads rows in their order; the AVX-512 ones read them
    // interleaved, as the engine stores them for those kernels.
    std::vector<std::vector<std::vector<uint8_t>>> packed(
        std::size(packed_types)),
        interleaved(std::size(packed_types));
    for (size_t ti = 0; ti < std::size(packed_types); ++ti) {
      const auto* qt = lumen::engine::quant::FindQuantType(packed_types[ti]);
      std::vector<float> w(s.N * s.K);
      for (int l = 0; l < layers; ++l) {
        for (float& v : w) v = normal(rng);
        packed[ti].emplace_back(s.N * lumen::engine::quant::RowBytes(*qt, s.K));
        qt->quantize_row(w.data(), packed[ti].back().data(), s.N * s.K);
        interleaved[ti].push_back(packed[ti].back());
        lumen::engine::quant::InterleaveRows(
            static_cast<uint32_t>(packed_types[ti]),
            interleaved[ti].back().data(), s.N, s.K,
            lumen::engine::quant::RowBytes(*qt, s.K));
      }
    }
    std::vector<float> x(256 * s.K), y(256 * s.N);
    for (float& v : x) v = normal(rng) * 50;
    std::vector<int8_t> q(256 * s.K);
    std::vector<float> d4(256 * s.K / 4), s16(256 * s.K / 16),
        s32(256 * s.K / 32), d256(256 * s.K / 256);
    std::vector<int8_t> q256(256 * s.K);
    std::vector<int16_t> b16(256 * s.K / 16), b32(256 * s.K / 32);
    std::vector<int32_t> z32(256 * s.K / 32);
    std::vector<uint8_t> panels(
        omp_get_max_threads() * lumen::engine::quant::PackedPanelBytes(s.K) +
        64);
    uint8_t* panel =
        panels.data() +
        (64 - reinterpret_cast<uintptr_t>(panels.data()) % 64) % 64;
    for (int64_t M : ms) {
      // The head runs on the rows a step samples (<= --max-running).
      if (head && M > 64) break;
      std::printf("%-8s %4lld", s.name, (long long)M);
      for (size_t ti = 0; ti < std::size(packed_types); ++ti) {
        const uint32_t type = static_cast<uint32_t>(packed_types[ti]);
        enum Kernel { kRowDot, kAvx512, kPanel };
        auto measure = [&](Kernel kernel) {
          auto call = [&](int l) {
            // The quantization the kernel reads, as Linear makes it.
            lumen::engine::quant::QuantizedActs acts{
                q.data(), d4.data(), s16.data(), s32.data(), z32.data()};
            if (kernel == kRowDot ||
                !lumen::engine::quant::ReadsSpanActivations(type, true)) {
              lumen::engine::quant::QuantizeActivations(
                  x.data(), M, s.K, q.data(), d4.data(), s16.data(), s32.data(),
                  z32.data());
            } else {
              lumen::engine::quant::QuantizeActivationsPerSpan(
                  x.data(), M, s.K, q256.data(), d256.data(), b16.data(),
                  b32.data());
              acts.q256 = q256.data();
              acts.d256 = d256.data();
              acts.bsum16 = b16.data();
              acts.bsum32 = b32.data();
            }
            if (kernel == kAvx512) {
              lumen::engine::quant::avx512::PackedGemm(
                  type, acts, M, s.K, interleaved[ti][l].data(), s.N, y.data(),
                  s.N, panel, omp_get_max_threads(), /*interleaved=*/true);
            } else if (kernel == kPanel) {
              lumen::engine::quant::avx512::PackedPanelGemm(
                  type, acts, M, s.K, interleaved[ti][l].data(), s.N, y.data(),
                  s.N, panel, omp_get_max_threads(), /*interleaved=*/true);
            } else {
              lumen::engine::quant::avx2::PackedGemv(
                  type, acts, M, s.K, packed[ti][l].data(), s.N, y.data(), s.N);
            }
          };
          for (int l = 0; l < layers; ++l) call(l);
          const auto t0 = Now(cpu_time);
          for (int64_t r = 0; r < reps; ++r) call(static_cast<int>(r % layers));
          return std::chrono::duration<double>(Now(cpu_time) - t0).count() /
                 reps;
        };
        const bool avx512 = lumen::engine::kernels::ActiveSmallGemmIsa() ==
                            lumen::engine::kernels::SmallGemmIsa::kAvx512;
        const double gemv = measure(kRowDot),
                     gemm = avx512 ? measure(kAvx512) : 1e30,
                     panel_only = avx512 ? measure(kPanel) : 1e30;
        const double flops = 2.0 * M * s.N * s.K;
        const double bytes = static_cast<double>(packed[ti][0].size());
        if (M == 1) {
          std::printf(" %6.1f %5.1fGB %6.1f %5.1fGB %6.1f %5.1fGB",
                      flops / gemv / 1e9, bytes / gemv / 1e9,
                      flops / gemm / 1e9, bytes / gemm / 1e9,
                      flops / panel_only / 1e9, bytes / panel_only / 1e9);
        } else {
          std::printf(" %14.1f %14.1f %14.1f", flops / gemv / 1e9,
                      flops / gemm / 1e9, flops / panel_only / 1e9);
        }
      }
      std::printf("\n");
    }
  }
  if (packed_only) return 0;
  BenchAttentionKernels(/*prefill=*/false, reps, cpu_time);
  BenchAttentionKernels(/*prefill=*/true, reps, cpu_time);
  return 0;
}
