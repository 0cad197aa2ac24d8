#pragma once
// Q4_K, Q6_K and Q8_0 weights in tiles, the order the AVX-512 tile kernel
// reads (k_tiles_avx512.cc). Rows are taken kInterleaveRows (16) at a time, as
// InterleaveRows does for the other types; a tile of R rows stores each
// 256-value span of its rows together in R blocks' bytes, every part
// transposed so that lane r (of a dword, a byte or an fp16 vector) is row r:
//   Q4_K (R * 144 bytes): 4 x R dwords, dword k of every row's block head
//     (k = 0: fp16 d and dmin; 1..3: the 12 scale bytes); then 32 x R code
//     dwords: group j holds values 8j..8j+7 as nibble pairs, byte i =
//     code(8j + i) | code(8j + 4 + i) << 4.
//   Q6_K (R * 210 bytes): R fp16 d; 16 x R int8 scales (one per 16
//     values); 32 x R dwords of the codes' low nibbles, grouped as Q4_K's;
//     16 x R dwords of their high two bits: pair p (values 16p..16p+15),
//     byte i = hi(16p + i) | hi(16p + 4 + i) << 2 | hi(16p + 8 + i) << 4 |
//     hi(16p + 12 + i) << 6.
//   Q8_0 (R * 272 bytes, 8 blocks per span): 8 x R fp16 d, block b's of
//     row r at b * R + r; then 64 x R code dwords: group j holds values
//     4j..4j+3 as code + 128 (unsigned, as vpdpbusd's weight operand wants
//     them; the kernel takes the 128 back off in integers).
// So one masked load and a mask, a shift or an OR give one 4-code operand
// of 16 rows for vpdpbusd (Q8_0: the load alone): no gather, transpose or
// unpacking per call. The tiles take exactly the bytes of the rows they
// replace. No C++ library headers (the AVX-512 kernel includes this file).

#include <cstdint>

#include "engine/quant/quant_kernels.h"

namespace lumen::engine::quant {

constexpr int64_t kQ4KBlockBytes = 144;
constexpr int64_t kQ6KBlockBytes = 210;
constexpr int64_t kQ8_0SpanBytes = 8 * 34;  // 8 blocks of fp16 d + 32 codes

namespace {  // (internal: AVX-512 files include this; see gemm_avx512.cc)
// Whether the kernels keep rows of `type` (a PackedTypeId) in tiles.
inline bool TiledType(uint32_t type) {
  return type == kIdQ4_K || type == kIdQ6_K || type == kIdQ8_0;
}
// Whether the tile kernel of `type` reads the activations quantized per
// 256-value span (Q4_K, Q6_K); Q8_0 tiles read the per-32 ones, so that a
// row's result has the bits of the unpacking kernel's.
inline bool SpanActivationType(uint32_t type) {
  return type == kIdQ4_K || type == kIdQ6_K;
}
// Up to how many activation rows the kernel reads tiles of `type` in place;
// above, it runs the rows over a panel made once per tile (k_tiles_avx512.cc
// says why each type's number).
inline int TileDirectRows(uint32_t type) { return type == kIdQ8_0 ? 8 : 16; }
}  // namespace

// Rewrites N rows of `type` (TiledType), K values each (K % 256 == 0), from
// GGUF order to tiles. `scratch` holds 16 rows (16 * K / 256 spans).
void TileRows(uint32_t type, uint8_t* w, int64_t N, int64_t K,
              uint8_t* scratch);

// Writes the GGUF block(s) of span s of row `row` of tiled W to `block`
// (Q8_0: the span's 8 blocks).
void UntileBlock(uint32_t type, const uint8_t* w, int64_t N, int64_t K,
                 int64_t row, int64_t s, uint8_t* block);

}  // namespace lumen::engine::quant
