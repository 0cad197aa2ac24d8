// phi3 (llama.cpp src/models/phi3.cpp): Phi-3, Phi-3.5 and Phi-4-mini. The
// llama layer with RoPE on split halves; q/k/v come fused in attn_qkv and
// gate/up in one ffn_up of 2 n_ff rows (gate first), which the weight loader
// stacks exactly as it stacks separate tensors. LongRoPE frequency factors
// (rope_factors_long/short) are chosen by the serving context, and
// rope.scaling.attn_factor scales cos and sin (Transformer::Load).
// attention.sliding_window is ignored, as llama.cpp disables Phi-3's SWA.

#include "engine/model/model_config.h"
#include "engine/model/model_family.h"

namespace lumen::engine {

namespace {

constexpr BlockStep kPhi3Block[] = {
    BlockStep::kAttentionNorm,
    BlockStep::kQkvProjection,
    BlockStep::kRope,
    BlockStep::kAttention,
    BlockStep::kOutputProjection,
    BlockStep::kAddToResidual,
    BlockStep::kFfnNorm,
    BlockStep::kSwiGlu,
    BlockStep::kAddToResidual,
};

}  // namespace

extern const ModelFamily kPhi3Family;
const ModelFamily kPhi3Family = {"phi3", kernels::RopeStyle::kHalves,
                                 kPhi3Block, nullptr};

}  // namespace lumen::engine
