// xbuild pull [--platform P] [-a] [-q] NAME[:TAG|@DIGEST]
#include <cstdio>

#include "cli/cli.h"
#include "cli/progress.h"
#include "cli/registry_util.h"

namespace xbuild::cli {

namespace {

// Pulls one reference, printing what `docker pull` prints.
int PullOne(Cli& cli, RegistrySession& reg, cache::ImageStore& store, const image::Reference& ref,
            const image::Platform& platform, bool quiet) {
  if (!quiet) {
    std::string what = ref.digest ? ref.digest->String() : ref.tag;
    std::printf("%s: Pulling from %s\n", what.c_str(), ref.path.c_str());
    std::fflush(stdout);
  }
  TransferProgress shown(TransferProgress::Mode::kPull, quiet);
  auto progress = [&](const registry::ProgressEvent& ev) { shown.Handle(ev); };
  auto r = reg.client->Pull(store, ref, platform, progress);
  shown.Finish();
  if (!r.ok()) return cli.Fail(r.error());
  if (!quiet) {
    std::printf("Digest: %s\n", r->digest.String().c_str());
    std::printf("Status: %s %s\n", r->up_to_date ? "Image is up to date for" : "Downloaded newer image for",
                ref.Familiar().c_str());
  }
  std::printf("%s\n", ref.String().c_str());
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

int RunPull(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.String("platform", 0, "", "Set platform if server is multi-platform capable");
  f.Bool("all-tags", 'a', "Download all tagged images in the repository");
  f.Bool("quiet", 'q', "Suppress verbose output");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "pull", "pull [OPTIONS] NAME[:TAG|@DIGEST]", args, pos, code, 1, 1)) return code;
  bool quiet = f.GetBool("quiet");
  bool all = f.GetBool("all-tags");
  auto ref = image::ParseReference(pos[0]);
  if (!ref.ok()) return cli.Fail(ref.error());
  if (all) {
    auto bare = image::ParseReferenceNoDefault(pos[0]);
    if (bare.ok() && (!bare->tag.empty() || bare->digest)) {
      return cli.UsageError("pull", "tag can't be used with --all-tags/-a");
    }
  }
  image::Platform platform = image::HostPlatform();
  if (f.Changed("platform")) {
    auto p = image::ParsePlatform(f.GetString("platform"));
    if (!p.ok()) return cli.Fail(p.error());
    platform = *p;
  }
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error());
  auto reg = OpenRegistry(cli);
  if (!reg.ok()) return cli.Fail(reg.error());
  if (!all) return PullOne(cli, *reg, **store, *ref, platform, quiet);

  auto tags = reg->client->ListTags(*ref);
  if (!tags.ok()) return cli.Fail(tags.error());
  if (tags->empty()) {
    return cli.Fail(core::Error(core::Code::kNotFound, "pull " + ref->Repository() + ": the repository has no tags"));
  }
  for (const auto& t : *tags) {
    image::Reference one = *ref;
    one.tag = t;
    int rc = PullOne(cli, *reg, **store, one, platform, quiet);
    if (rc != kExitOk) return rc;
  }
  return kExitOk;
}

}  // namespace xbuild::cli
