#pragma once
// Matrix products with packed weights (quant_type.h) against activations
// quantized to int8: y[M, N] = x[M, K] * W[N, K]^T. Weights stay in their
// GGUF blocks; the kernels multiply the blocks' codes with the int8
// activations exactly in integers. Activations are quantized per 32 values
// and the block scales applied in fp32 per block, except in the Q4_K/Q6_K
// tile kernel: activations per 256 values, sub-block scales applied in
// integers, fp32 once per 256 values (QuantizedActs).
//
// One kernel serves every M, so a row's result is bit-identical whatever
// else shares the step (with 8-bit activations, a float-order difference
// between two kernels can flip an activation's rounding in the next layer
// and move logits by a percent). With AVX-512 VNNI: 16 weight rows at a time
// are unpacked in registers into an interleaved int8 panel (one zmm = 4
// codes of each of 16 rows) and every activation row runs over it with
// vpdpbusd against broadcast activations; the unpacking is shared by the
// M rows. On AVX2: row dots, each weight chunk decoded once per tile of
// activation rows. small_gemm_isa.h picks the variant. For 1-4 activation
// rows (decode) the AVX-512 variant skips the panel: a direct kernel dots
// each row's codes in place and transposes the 16-value integer sums instead
// of the codes, with the panel's fp32 operations (bit-identical rows).
// Q4_K and Q6_K, the types of the usual Q4_K_M files, are stored at load
// already in the panel's shape (k_tiles.h): up to 16 activation rows read the
// tiles directly, larger M decode each tile once into a panel (again the
// same bits). Q8_0 tiles hold the panel's operands already: up to 8 rows
// read them in place, larger M copy each into the panel, both with the
// unpacking kernel's bits. The engine thread calls them; they split N over
// OpenMP threads.
//
// No C++ library headers: the AVX-512 kernel file includes this one.

#include <cstdint>

namespace lumen::engine::quant {

// ggml type ids of the packed types (the kernels take raw ids so that the
// AVX-512 files need not include ggml_type.h).
enum PackedTypeId : uint32_t {
  kIdQ4_0 = 2,
  kIdQ4_1 = 3,
  kIdQ5_0 = 6,
  kIdQ5_1 = 7,
  kIdQ8_0 = 8,
  kIdQ2_K = 10,
  kIdQ3_K = 11,
  kIdQ4_K = 12,
  kIdQ5_K = 13,
  kIdQ6_K = 14,
  kIdIQ4_NL = 20,
  kIdIQ4_XS = 23,
};

// Activations as the kernels read them (buffers owned by the caller).
// AVX-512 files copy it but must not default-construct it (`QuantizedActs
// a;`): the default member initializers make that constructor an inline
// function with external linkage.
// Two quantizations of the same rows: per 32 values (every kernel but the
// Q4_K/Q6_K tile kernel), and per 256-value span (that kernel, like
// llama.cpp's Q8_K: one activation scale per span lets it sum a span's
// sub-block products in integers and convert once per span instead of once
// per 16 or 32 values). Either group may be null where no kernel reads it
// (ReadsSpanActivations says which one a matrix's kernel reads).
struct QuantizedActs {
  const int8_t* q;     // [M, K] round(x / d), |q| <= 127
  const float* d4;     // [M, K/4] d of the 32-block each 4 values belong to
  const float* sum16;  // [M, K/16] d * sum of q over each 16 values
  const float* sum32;  // [M, K/32] d * sum of q over each 32-block
  // [M, K/32] -128 * sum of q over each 32-block: the zero point of the
  // symmetric legacy types (code - 128, 16 or 8) times the activations,
  // applied in integers (exactly, and without an fp32 operation per block).
  const int32_t* zsum32;
  const int8_t* q256 = nullptr;     // [M, K] round(x / d256), |q| <= 127
  const float* d256 = nullptr;      // [M, K/256] one d per span
  const int16_t* bsum16 = nullptr;  // [M, K/16] sum of q256 over 16 values
  const int16_t* bsum32 = nullptr;  // [M, K/32] sum of q256 over 32 values
};

// Rows [m0, ..) of x (K values per row). Out of line: an inline function
// here would also be compiled with the AVX-512 files' flags.
QuantizedActs ActsFrom(const QuantizedActs& x, int64_t m0, int64_t K);

// Quantizes x [M, K] (K % 32 == 0): per 32-block q = round-half-even(x *
// 127 / max|x|), d = max|x| / 127 rounded to fp16 (llama.cpp's Q8_0).
void QuantizeActivations(const float* x, int64_t M, int64_t K, int8_t* q,
                         float* d4, float* sum16, float* sum32,
                         int32_t* zsum32);

// The span fields (K % 256 == 0): per 256 values q = round-half-even(x *
// (127 / max|x|)), d = max|x| / 127 in fp32 (as llama.cpp's Q8_K keeps it),
// and the integer sums of q over each 16 and 32 values.
void QuantizeActivationsPerSpan(const float* x, int64_t M, int64_t K, int8_t* q,
                                float* d, int16_t* bsum16, int16_t* bsum32);

// Scratch PackedMatmul needs per OpenMP thread for a K-wide matrix.
int64_t PackedPanelBytes(int64_t K);

// Row-interleaved weights: the rows are taken in tiles of kInterleaveRows
// (the last may be short), and inside a tile the rows' 256-value spans are
// stored span by span: span 0 of each row, then span 1 of each row, ... A
// tile still takes rows * row_bytes bytes where its rows did. The AVX-512
// kernels then read each thread's share of W as one sequential stream.
constexpr int kInterleaveRows = 16;

// Whether PackedMatmul wants `type` rows of K values interleaved on this
// CPU: the AVX-512 kernels with K a multiple of 256.
bool InterleaveWanted(int64_t K);

// Rewrites N rows of `type` (row_bytes, K values) at w, in place, from
// their natural order into the interleaved one (one tile of scratch at a
// time). Q4_K, Q6_K and Q8_0 rows go further, into the tiles of k_tiles.h:
// the same bytes per tile and span, reordered inside the span.
void InterleaveRows(uint32_t type, uint8_t* w, int64_t N, int64_t K,
                    int64_t row_bytes);

// Whether PackedMatmul on rows of `type`, stored interleaved or not, reads
// the activations' span fields (else only the per-32 ones).
bool ReadsSpanActivations(uint32_t type, bool interleaved);

// Copies span s (values 256s..256s+255) of row `row` of interleaved W to
// `out`, in the GGUF block order (row_bytes / (K / 256) bytes).
void CopyInterleavedSpan(uint32_t type, const uint8_t* w, int64_t N, int64_t K,
                         int64_t row_bytes, int64_t row, int64_t s,
                         uint8_t* out);

// y[m * ldy + n] = sum_k W[n, k] x[m, k] for W's N rows of `type` (one of
// PackedTypeId) at w, rows back to back or, when `interleaved`, as
// InterleaveRows writes them (only where InterleaveWanted). Interleaved
// Q4_K and Q6_K rows read x's span fields (ReadsSpanActivations), which must
// then be set. `panels` holds
// `panel_slots` * PackedPanelBytes(K) bytes, 64-byte aligned; at most that
// many OpenMP threads run (omp_get_max_threads() slots let all of them run).
void PackedMatmul(uint32_t type, const QuantizedActs& x, int64_t M, int64_t K,
                  const uint8_t* w, int64_t N, float* y, int64_t ldy,
                  uint8_t* panels, int panel_slots, bool interleaved);

namespace avx2 {
void PackedGemv(uint32_t type, const QuantizedActs& x, int64_t M, int64_t K,
                const uint8_t* w, int64_t N, float* y, int64_t ldy);
}  // namespace avx2
namespace avx512 {
// Up to 4 activation rows (K % 256 == 0) a direct kernel, else the panel;
// both give a row the same bits. Interleaved Q4_K, Q6_K and Q8_0: TiledGemm.
void PackedGemm(uint32_t type, const QuantizedActs& x, int64_t M, int64_t K,
                const uint8_t* w, int64_t N, float* y, int64_t ldy,
                uint8_t* panels, int panel_slots, bool interleaved);
// Q4_K, Q6_K or Q8_0 rows in tiles (k_tiles.h), every M (panels as for
// PackedGemm); PackedGemm and PackedPanelGemm call it for interleaved rows
// of those types.
// `direct_ok` false: the panel at every M, as PackedPanelGemm promises.
void TiledGemm(uint32_t type, const QuantizedActs& x, int64_t M, int64_t K,
               const uint8_t* w, int64_t N, float* y, int64_t ldy,
               uint8_t* panels, int panel_slots, bool direct_ok);
// The panel kernel at every M (tests and benchmarks compare the two).
void PackedPanelGemm(uint32_t type, const QuantizedActs& x, int64_t M,
                     int64_t K, const uint8_t* w, int64_t N, float* y,
                     int64_t ldy, uint8_t* panels, int panel_slots,
                     bool interleaved);
}  // namespace avx512

}  // namespace lumen::engine::quant
