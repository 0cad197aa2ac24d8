#include "engine/kernels/dnnl_matmul.h"

#include <new>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace lumen::engine::kernels {

namespace {
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// One CPU engine for the process, and a stream per calling thread: the
// engine thread and the embedding lanes (server/embedding_worker.h) run
// matmuls at the same time, and a oneDNN stream must not be used by two
// threads at once.
struct DnnlContext {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
};
DnnlContext& Context() {
  static DnnlContext* ctx = new DnnlContext();
  return *ctx;
}
dnnl::stream& ThreadStream() {
  thread_local dnnl::stream stream{Context().engine};
  return stream;
}

absl::Status FromDnnl(const dnnl::error& e, const char* what) {
  return absl::InternalError(absl::StrCat("oneDNN ", what, ": ", e.what()));
}

// The shapes whose kernels have run once in this process. The first run of
// a shape JIT-compiles its kernels; later matrices of the same shape (every
// layer's) reuse them, so only the first needs a warm-up run. Warming up
// each of a 110M fp32 model's 49 matrices allocated and filled a dummy copy
// of every weight matrix: most of its 6.5 s load.
using Shape = std::tuple<int64_t, int64_t, bool>;  // K, N, bias
ABSL_CONST_INIT absl::Mutex warm_mu(absl::kConstInit);
absl::flat_hash_set<Shape>& WarmShapes()
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(warm_mu) {
  static auto* shapes = new absl::flat_hash_set<Shape>();
  return *shapes;
}
bool IsWarm(const Shape& s) {
  absl::MutexLock lock(&warm_mu);
  return WarmShapes().contains(s);
}
void MarkWarm(const Shape& s) {
  absl::MutexLock lock(&warm_mu);
  WarmShapes().insert(s);
}

// The scratchpad is ours (scratchpad_mode::user), one buffer per calling
// thread: with the library's, a primitive must run on the thread that
// created it (its buffer is that thread's), and models load on a transient
// thread (RunInTransientOpenMpTeam) that is gone when the engine thread
// runs them. Grown to the largest primitive's need on first use.
uint8_t* ThreadScratchpad(size_t bytes) {
  thread_local std::vector<uint8_t> buffer;
  if (buffer.size() < bytes) buffer.resize(bytes);
  return buffer.data();
}
}  // namespace

struct DnnlMatmulF32::Impl {
  int64_t K, N;
  const float* bias;
  dnnl::matmul primitive;
  dnnl::memory::desc weights_md;
  dnnl::memory::desc scratchpad_md;
  dnnl::memory bias_mem;
};

DnnlMatmulF32::DnnlMatmulF32(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
DnnlMatmulF32::~DnnlMatmulF32() = default;

absl::StatusOr<std::unique_ptr<DnnlMatmulF32>> DnnlMatmulF32::Create(
    int64_t K, int64_t N, const float* bias) {
  try {
    DnnlContext& ctx = Context();
    auto impl = std::make_unique<Impl>();
    impl->K = K;
    impl->N = N;
    impl->bias = bias;
    dnnl::memory::desc src_md({DNNL_RUNTIME_DIM_VAL, K}, dt::f32, tag::ab);
    // W stored [N, K] row-major is the {K, N} matrix in "ba" order.
    dnnl::memory::desc w_md({K, N}, dt::f32, tag::ba);
    dnnl::memory::desc dst_md({DNNL_RUNTIME_DIM_VAL, N}, dt::f32, tag::ab);
    dnnl::memory::desc bias_md({1, N}, dt::f32, tag::ab);
    auto desc = bias ? dnnl::matmul::desc(src_md, w_md, bias_md, dst_md)
                     : dnnl::matmul::desc(src_md, w_md, dst_md);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::matmul::primitive_desc pd(desc, attr, ctx.engine);
    impl->primitive = dnnl::matmul(pd);
    impl->weights_md = w_md;
    impl->scratchpad_md = pd.scratchpad_desc();
    if (bias)
      impl->bias_mem =
          dnnl::memory(bias_md, ctx.engine, const_cast<float*>(bias));
    std::unique_ptr<DnnlMatmulF32> mm(new DnnlMatmulF32(std::move(impl)));
    // Warm up: the first execution of a shape JIT-compiles its kernels.
    const Shape shape{K, N, bias != nullptr};
    if (!IsWarm(shape)) {
      std::vector<float> x(64 * K, 0.5f), w(K * N, 0.25f), y(64 * N);
      if (absl::Status s = mm->Run(x.data(), 64, w.data(), y.data()); !s.ok())
        return s;
      MarkWarm(shape);
    }
    return mm;
  } catch (const dnnl::error& e) {
    return FromDnnl(e, "matmul creation");
  }
}

absl::Status DnnlMatmulF32::Run(const float* x, int64_t M, const float* w,
                                float* y) const {
  try {
    DnnlContext& ctx = Context();
    dnnl::stream& stream = ThreadStream();
    dnnl::memory src({{M, impl_->K}, dt::f32, tag::ab}, ctx.engine,
                     const_cast<float*>(x));
    dnnl::memory dst({{M, impl_->N}, dt::f32, tag::ab}, ctx.engine, y);
    dnnl::memory weights(impl_->weights_md, ctx.engine, const_cast<float*>(w));
    std::unordered_map<int, dnnl::memory> args = {
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
    if (impl_->bias) args.emplace(DNNL_ARG_BIAS, impl_->bias_mem);
    if (const size_t bytes = impl_->scratchpad_md.get_size(); bytes > 0) {
      args.emplace(DNNL_ARG_SCRATCHPAD,
                   dnnl::memory(impl_->scratchpad_md, ctx.engine,
                                ThreadScratchpad(bytes)));
    }
    impl_->primitive.execute(stream, args);
    stream.wait();
    return absl::OkStatus();
  } catch (const dnnl::error& e) {
    return FromDnnl(e, "matmul");
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        "oneDNN matmul: no memory for its scratchpad");
  }
}

}  // namespace lumen::engine::kernels
