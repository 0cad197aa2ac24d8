// `lumen tokenize`, `lumen models`, `lumen health`, `lumen stats`.

#include <cstdio>
#include <iostream>
#include <iterator>
#include <optional>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "lumen/v1/admin.grpc.pb.h"
#include "lumen/v1/inference.grpc.pb.h"
#include "tools/lumen/client_common.h"
#include "tools/lumen/commands.h"

namespace lumen::tools {

int ClientTokenize(const Args& args) {
  ClientFlags client;
  std::string model, text;
  bool no_bos = false, parse_special = false, use_stdin = true;
  FlagSet flags(
      "lumen tokenize [--model NAME] [--text TEXT | < text] [--no-bos] "
      "[--parse-special]");
  client.Register(&flags);
  flags.String("model", &model, "model name");
  flags.String("text", &text, "text (default: stdin)");
  flags.Bool("no-bos", &no_bos, "do not add BOS/EOS");
  flags.Bool("parse-special", &parse_special,
             "turn special token text into ids");
  if (auto rc = ParseOrHelp(&flags, args, &client)) return *rc;
  for (const std::string& a : args) use_stdin &= !a.starts_with("--text");
  if (use_stdin) text.assign(std::istreambuf_iterator<char>(std::cin), {});
  lumen::v1::TokenizeRequest req;
  req.set_model(model);
  req.set_text(text);
  req.set_add_special(!no_bos);
  req.set_parse_special(parse_special);
  lumen::v1::TokenizeResponse resp;
  auto ctx = client.Context();
  grpc::Status st = lumen::v1::Inference::NewStub(client.Channel())
                        ->Tokenize(ctx.get(), req, &resp);
  if (!st.ok()) return FailRpc(st);
  std::string out = "[";
  for (int i = 0; i < resp.token_ids_size(); ++i)
    absl::StrAppend(&out, i ? ", " : "", resp.token_ids(i));
  std::printf("%s]\n", out.c_str());
  return 0;
}

int ClientModels(const Args& args) {
  ClientFlags client;
  FlagSet flags("lumen models [--addr A]");
  client.Register(&flags);
  if (auto rc = ParseOrHelp(&flags, args, &client)) return *rc;
  lumen::v1::ListModelsResponse resp;
  auto ctx = client.Context();
  grpc::Status st =
      lumen::v1::Inference::NewStub(client.Channel())
          ->ListModels(ctx.get(), lumen::v1::ListModelsRequest(), &resp);
  if (!st.ok()) return FailRpc(st);
  std::printf("%-20s %-8s %14s %-7s %8s %7s %10s %s\n", "name", "arch",
              "parameters", "weights", "context", "vocab", "resident", "chat");
  for (const auto& m : resp.models()) {
    std::printf(
        "%-20s %-8s %14llu %-7s %8u %7u %7.1f MiB %s\n", m.name().c_str(),
        m.architecture().c_str(), (unsigned long long)m.parameters(),
        m.weights().c_str(), m.context_length(), m.vocab_size(),
        m.resident_bytes() / 1048576.0, m.has_chat_template() ? "yes" : "no");
  }
  return 0;
}

int ClientHealth(const Args& args) {
  ClientFlags client;
  std::string service;
  client.timeout = 5;
  FlagSet flags("lumen health [--addr A]  (exit 0 when SERVING)");
  client.Register(&flags);
  flags.String("service", &service, "service name (empty: the whole server)");
  if (auto rc = ParseOrHelp(&flags, args, &client)) return *rc;
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  auto ctx = client.Context();
  grpc::Status st = grpc::health::v1::Health::NewStub(client.Channel())
                        ->Check(ctx.get(), req, &resp);
  if (!st.ok()) return FailRpc(st);
  std::printf("%s\n", grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                          resp.status())
                          .c_str());
  return resp.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0
                                                                         : 1;
}

int ClientStats(const Args& args) {
  ClientFlags client;
  std::string model;
  FlagSet flags("lumen stats [--addr A] [--model NAME]");
  client.Register(&flags);
  flags.String("model", &model, "one model (empty: all)");
  if (auto rc = ParseOrHelp(&flags, args, &client)) return *rc;
  lumen::v1::GetStatsRequest req;
  req.set_model(model);
  lumen::v1::GetStatsResponse resp;
  auto ctx = client.Context();
  grpc::Status st = lumen::v1::Admin::NewStub(client.Channel())
                        ->GetStats(ctx.get(), req, &resp);
  if (!st.ok()) return FailRpc(st);
  for (const auto& m : resp.models()) {
    std::printf(
        "%s: queue %u, running %u, KV blocks %u used / %u free (%u cached) of "
        "%u; prefix-cache "
        "hits %llu tokens; prompt %llu, generated %llu tokens; %llu steps "
        "(%.2f ms, %.1f tokens "
        "each, %.0f%% in the model); %llu preemptions; %llu requests "
        "finished\n",
        m.model().c_str(), m.queue_depth(), m.running(), m.kv_blocks_used(),
        m.kv_blocks_free(), m.kv_blocks_cached(), m.kv_blocks_total(),
        (unsigned long long)m.prefix_cache_hit_tokens(),
        (unsigned long long)m.prompt_tokens(),
        (unsigned long long)m.generation_tokens(),
        (unsigned long long)m.steps(), 1e3 * m.mean_step_seconds(),
        m.mean_step_tokens(), 100 * m.mean_forward_fraction(),
        (unsigned long long)m.preemptions(),
        (unsigned long long)m.requests_finished());
    for (const auto& layer : m.moe_layers()) {
      std::string counts;
      for (uint64_t n : layer.expert_tokens())
        absl::StrAppend(&counts, counts.empty() ? "" : " ", n);
      std::printf(
          "  moe layer %u: imbalance %.2f (max/mean), tokens per expert %s\n",
          layer.layer(), layer.imbalance(), counts.c_str());
    }
  }
  return 0;
}

// lumen adapter list | load NAME PATH [--model M] | unload NAME
int ClientAdapter(const Args& args) {
  ClientFlags client;
  std::string model;
  FlagSet flags(
      "lumen adapter list | load NAME PATH [--model M] | unload NAME");
  client.Register(&flags);
  flags.String("model", &model, "load: the base model (empty: the default)");
  if (auto rc = ParseOrHelp(&flags, args, &client)) return *rc;
  const auto& pos = flags.positional();
  auto stub = lumen::v1::Admin::NewStub(client.Channel());
  auto ctx = client.Context();
  if (pos.size() == 1 && pos[0] == "list") {
    lumen::v1::ListAdaptersResponse resp;
    grpc::Status st =
        stub->ListAdapters(ctx.get(), lumen::v1::ListAdaptersRequest(), &resp);
    if (!st.ok()) return FailRpc(st);
    for (const auto& a : resp.adapters()) {
      std::printf(
          "%s\tmodel %s\trank %u\talpha %g\ttargets %s\t%llu "
          "parameters\t%s\n",
          a.name().c_str(), a.model().c_str(), a.rank(), a.alpha(),
          a.targets().c_str(), (unsigned long long)a.parameters(),
          a.path().c_str());
    }
    return 0;
  }
  if (pos.size() == 3 && pos[0] == "load") {
    lumen::v1::LoadAdapterRequest req;
    req.set_name(pos[1]);
    req.set_path(pos[2]);
    req.set_model(model);
    lumen::v1::LoadAdapterResponse resp;
    grpc::Status st = stub->LoadAdapter(ctx.get(), req, &resp);
    if (!st.ok()) return FailRpc(st);
    std::printf("loaded %s for model %s (rank %u, targets %s)\n",
                resp.adapter().name().c_str(), resp.adapter().model().c_str(),
                resp.adapter().rank(), resp.adapter().targets().c_str());
    return 0;
  }
  if (pos.size() == 2 && pos[0] == "unload") {
    lumen::v1::UnloadAdapterRequest req;
    req.set_name(pos[1]);
    lumen::v1::UnloadAdapterResponse resp;
    grpc::Status st = stub->UnloadAdapter(ctx.get(), req, &resp);
    if (!st.ok()) return FailRpc(st);
    std::printf("unloaded %s (waited %.3f s for its requests)\n",
                pos[1].c_str(), resp.waited_seconds());
    return 0;
  }
  return Fail("expected list, load NAME PATH or unload NAME\n" + flags.Help(),
              2);
}

}  // namespace lumen::tools

namespace lumen::tools {

int ClientEmbed(const Args& args) {
  ClientFlags client;
  std::vector<std::string> texts;
  FlagSet flags(
      "lumen embed --text T [--text T ...]  (JSON list of vectors on stdout)");
  client.Register(&flags);
  flags.Repeated("text", &texts, "text to embed (repeatable)");
  if (auto rc = ParseOrHelp(&flags, args, &client)) return *rc;
  if (texts.empty()) return Fail("--text is required\n" + flags.Help(), 2);
  lumen::v1::EmbedRequest req;
  for (const auto& t : texts) req.add_texts(t);
  lumen::v1::EmbedResponse resp;
  auto ctx = client.Context();
  grpc::Status st = lumen::v1::Inference::NewStub(client.Channel())
                        ->Embed(ctx.get(), req, &resp);
  if (!st.ok()) return FailRpc(st);
  std::string out = "[";
  for (int i = 0; i < resp.embeddings_size(); ++i) {
    absl::StrAppend(&out, i ? ",\n [" : "[");
    const auto& v = resp.embeddings(i).values();
    for (int j = 0; j < v.size(); ++j)
      absl::StrAppend(&out, j ? ", " : "", v[j]);
    out += "]";
  }
  std::printf("%s]\n", out.c_str());
  return 0;
}

}  // namespace lumen::tools
