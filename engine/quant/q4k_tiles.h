#pragma once
// Q4_K weights in tiles, the order the AVX-512 Q4_K kernel reads
// (q4k_tiles_avx512.cc). Rows are taken kInterleaveRows (16) at a time, as
// InterleaveRows does for the other types; a tile of R rows stores each
// 256-value span of its rows together in R * 144 bytes (the size of R
// blocks), with lane r meaning row r:
//   - 4 x R dwords: dword k of every row's block head (k = 0: fp16 d and
//     dmin; 1..3: the 12 scale bytes), so one load gives 16 rows' heads;
//   - 32 x R dwords of codes: group j holds values 8j..8j+7 of each row as
//     nibbles, byte i = code(8j + i) | code(8j + 4 + i) << 4, so one load
//     and a mask (or a shift) give one 4-code operand of 16 rows for
//     vpdpbusd, with no gather, transpose or per-call unpacking.
// The tiles take exactly the bytes of the rows they replace. No C++ library
// headers (the AVX-512 kernel includes this file).

#include <cstdint>

namespace lumen::engine::quant {

constexpr int64_t kQ4KBlockBytes = 144;

// Rewrites N rows of K values (K % 256 == 0) from GGUF order to tiles.
// `scratch` holds 16 * (K / 256) * 144 bytes.
void TileQ4KRows(uint8_t* w, int64_t N, int64_t K, uint8_t* scratch);

// Writes the GGUF block of span s of row `row` of tiled W to `block`.
void UntileQ4KBlock(const uint8_t* w, int64_t N, int64_t K, int64_t row,
                    int64_t s, uint8_t* block);

}  // namespace lumen::engine::quant
