// The sandbox: a template from a downloaded model file cannot loop, recurse,
// allocate or print without bound, and cannot reach anything but the listed
// builtins. Each limit fails with InvalidArgument naming it; just inside a
// limit the template still renders.

#include <string>

#include "chat/jinja/template.h"
#include "gtest/gtest.h"
#include "tests/test_support.h"

namespace lumen::chat::jinja {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<std::string> Render(const std::string& source,
                                   const Limits& limits = {},
                                   const Json& vars = Json::object()) {
  auto tmpl = Template::Compile(source);
  if (!tmpl.ok()) return tmpl.status();
  RenderOptions o;
  o.limits = limits;
  return (*tmpl)->Render(vars, o);
}

TEST(Sandbox, LoopIterationsAreBoundedAcrossAllLoops) {
  Limits l;
  l.max_loop_iterations = 1000;
  EXPECT_THAT(Render("{% for i in range(100000) %}{% for j in range(100000) "
                     "%}{% endfor %}{% endfor %}",
                     l),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("loops ran more than 1000 iterations")));
  // Exactly at the limit: 10 outer + 10 * 99 inner = 1000.
  EXPECT_TRUE(Render("{% for i in range(10) %}{% for j in range(99) %}"
                     "{% endfor %}{% endfor %}",
                     l)
                  .ok());
  // Items a loop's `if` filter looks at count too.
  EXPECT_THAT(Render("{% for i in range(2000) if false %}{% endfor %}", l),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("loops ran more than 1000")));
}

TEST(Sandbox, RangeIsBounded) {
  Limits l;
  l.max_range = 500;
  EXPECT_THAT(Render("{{ range(501)|length }}", l),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("range has more than 500 items")));
  EXPECT_EQ(*Render("{{ range(500)|length }}", l), "500");
  EXPECT_THAT(
      Render("{{ range(-9223372036854775807, 9223372036854775807)|length }}"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("range has more than")));
}

TEST(Sandbox, MacroRecursionIsBounded) {
  Limits l;
  l.max_call_depth = 8;
  EXPECT_THAT(
      Render("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", l),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("macro calls nested deeper than 8 levels")));
  EXPECT_EQ(*Render("{% macro r(n) %}{% if n < 7 %}{{ n }}{{ r(n + 1) }}"
                    "{% endif %}{% endmacro %}{{ r(0) }}",
                    l),
            "0123456");  // r(0) ... r(7): eight nested calls
}

TEST(Sandbox, OutputIsBounded) {
  Limits l;
  l.max_output_bytes = 1000;
  EXPECT_THAT(Render("{% for i in range(200) %}0123456789{% endfor %}", l),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("rendering longer than 1000 bytes")));
  EXPECT_EQ(
      Render("{% for i in range(100) %}0123456789{% endfor %}", l)->size(),
      1000u);
  // Macro output, block sets and single strings are bounded alike.
  EXPECT_THAT(Render("{% macro m() %}{% for i in range(200) %}0123456789"
                     "{% endfor %}{% endmacro %}{% set x = m() %}",
                     l),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("longer than 1000 bytes")));
  EXPECT_THAT(Render("{{ 'x' * 1001 }}", l),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("longer than 1000 bytes")));
  EXPECT_THAT(Render("{{ 'x' * 9223372036854775807 }}", l),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("longer than 1000 bytes")));
  EXPECT_THAT(Render("{{ ('x' * 100)|replace('x', 'yyyyyyyyyyyy') }}", l),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("longer than 1000 bytes")));
}

TEST(Sandbox, DoublingStringsStopsAtTheLimit) {
  EXPECT_THAT(
      Render("{% set ns = namespace(s='x') %}{% for i in range(64) %}"
             "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("longer than")));
  EXPECT_THAT(
      Render("{% set ns = namespace(s='x') %}{% for i in range(64) %}"
             "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("longer than")));
}

TEST(Sandbox, WorkIsBounded) {
  Limits l;
  l.max_work = 1 << 20;
  // Doubling a list: each copy is charged.
  EXPECT_THAT(Render("{% set ns = namespace(l=[1]) %}{% for i in range(64) %}"
                     "{% set ns.l = ns.l + ns.l %}{% endfor %}",
                     l),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("exceeded its work limit")));
  // Many passes over a long string, each under the output limit.
  EXPECT_THAT(Render("{% set s = 'abc' * 100000 %}{% for i in range(1000) %}"
                     "{% set t = s.replace('a', 'b') %}{% endfor %}",
                     l),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("exceeded its work limit")));
}

TEST(Sandbox, NestingOfValuesIsBounded) {
  Limits l;
  l.max_value_depth = 20;
  EXPECT_THAT(Render("{% set ns = namespace(l=[]) %}{% for i in range(1000) %}"
                     "{% set ns.l = [ns.l] %}{% endfor %}",
                     l),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("value nested deeper than 20 levels")));
  // Deep input is refused before rendering.
  Json deep = Json::array();
  for (int i = 0; i < 30; ++i) deep = Json::array({deep});
  EXPECT_THAT(Render("{{ x|length }}", l, Json{{"x", deep}}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("variables nested deeper than 20 levels")));
}

TEST(Sandbox, PythonInternalsAreUnreachable) {
  const Json vars = Json::parse(R"({"d": {"a": 1}, "l": [1], "s": "x"})");
  // Dunder attributes and methods outside the list are Undefined ...
  for (const char* source :
       {"{{ s.__class__ }}", "{{ d.__dict__ }}", "{{ l.append }}",
        "{{ s.format }}", "{{ d.update }}", "{{ namespace().__init__ }}",
        "{{ range.__globals__ }}", "{{ raise_exception.__code__ }}"}) {
    auto text = Render(source, {}, vars);
    ASSERT_TRUE(text.ok()) << source << ": " << text.status();
    EXPECT_EQ(*text, "") << source;
  }
  // ... and using them is an error, never a call.
  for (const char* source :
       {"{{ s.__class__.__mro__ }}", "{{ l.append(2) }}", "{{ d.update(a=2) }}",
        "{{ s.format(1) }}", "{{ d.pop('a') }}"}) {
    EXPECT_THAT(Render(source, {}, vars),
                StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_))
        << source;
  }
  // The input stays untouched.
  EXPECT_EQ(*Render("{{ d }}{{ l }}", {}, vars), "{'a': 1}[1]");
}

}  // namespace
}  // namespace lumen::chat::jinja
