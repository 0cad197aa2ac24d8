#pragma once
// The sandbox limits and settings of compiling and rendering a template. A
// chat template comes from a downloaded model file, so everything it can make
// the renderer do is bounded here; exceeding a bound is an InvalidArgument
// naming it, never a crash or an unbounded loop.

#include <cstdint>

#include "absl/time/time.h"

namespace lumen::chat::jinja {

struct CompileOptions {
  int64_t max_source_bytes = 1 << 20;  // a real chat template is < 20 KiB
  int max_expression_depth = 100;      // nesting of one expression
  int max_block_depth = 50;            // if/for/macro/set blocks inside others
  bool trim_blocks = true;             // Hugging Face's settings
  bool lstrip_blocks = true;
};

struct Limits {
  int64_t max_output_bytes = 4 << 20;     // the rendering, and any one string
  int64_t max_loop_iterations = 1 << 20;  // of all loops of a render together
  int64_t max_range = 100000;             // elements of one range(), as jinja2
  int max_call_depth = 24;                // macro calls inside macro calls
  int max_value_depth = 128;              // nesting of lists/dicts, input too
  // Work units of a render: every byte of a string the template makes and
  // every element of a list or dict it copies costs one.
  int64_t max_work = 1 << 28;
};

struct RenderOptions {
  Limits limits;
  // strftime_now() formats this instant; tests fix it. Defaults to the time
  // of the render.
  absl::Time now = absl::InfinitePast();
  absl::TimeZone time_zone = absl::LocalTimeZone();
};

}  // namespace lumen::chat::jinja
