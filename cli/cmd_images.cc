// xbuild images [-a] [-q] [--digests] [--no-trunc] [--format table|json] [REPOSITORY[:TAG]]
#include <cstdio>
#include <ctime>
#include <set>

#include "cli/cli.h"
#include "cli/table.h"
#include "core/json.h"

namespace xbuild::cli {

namespace {

struct Row {
  std::string repo, tag, digest, id, created_since, created_at;
  int64_t size = 0;
};

}  // namespace

int RunImages(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.Bool("all", 'a', "Show all images");
  f.Bool("quiet", 'q', "Only show image IDs");
  f.Bool("digests", 0, "Show digests");
  f.Bool("no-trunc", 0, "Don't truncate output");
  f.String("format", 0, "table", "Format output: table or json");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "images", "images [OPTIONS] [REPOSITORY[:TAG]]", args, pos, code, 0, 1)) return code;
  const std::string& format = f.GetString("format");
  if (format != "table" && format != "json") {
    return cli.UsageError("images", "unsupported --format \"" + format + "\": want table or json");
  }
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error());
  auto images = (*store)->List();
  if (!images.ok()) return cli.Fail(images.error());

  // A filter "repo" matches every tag of repo; "repo:tag" one tag.
  std::optional<image::Reference> filter;
  if (!pos.empty()) {
    auto ref = image::ParseReferenceNoDefault(pos[0]);
    if (!ref.ok()) return cli.Fail(ref.error());
    filter = *ref;
  }
  bool no_trunc = f.GetBool("no-trunc");
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  std::vector<Row> rows;
  for (auto& img : *images) {
    int64_t size = img.record.size + img.manifest.config.size;
    for (auto& l : img.manifest.layers) size += l.size;
    int64_t created = ParseTime(img.config.created);
    Row base;
    base.id = no_trunc ? img.record.config.String() : img.record.config.Short();
    base.digest = img.record.digest.String();
    base.created_since = created ? HumanDuration(now - created) + " ago" : "N/A";
    base.created_at = img.config.created.empty() ? "N/A" : img.config.created;
    base.size = size;
    if (img.tags.empty()) {
      if (filter) continue;
      Row r = base;
      r.repo = r.tag = "<none>";
      rows.push_back(r);
      continue;
    }
    for (auto& t : img.tags) {
      auto ref = image::ParseReference(t);
      if (!ref.ok()) continue;
      if (filter && (filter->Repository() != ref->Repository() || (!filter->tag.empty() && filter->tag != ref->tag))) {
        continue;
      }
      Row r = base;
      r.repo = ref->FamiliarRepository();
      r.tag = ref->tag;
      rows.push_back(r);
    }
  }

  if (f.GetBool("quiet")) {
    std::set<std::string> seen;
    for (auto& r : rows)
      if (seen.insert(r.id).second) std::printf("%s\n", r.id.c_str());
    return kExitOk;
  }
  if (format == "json") {
    for (auto& r : rows) {
      core::OrderedJson j;
      j["Containers"] = "N/A";
      j["CreatedAt"] = r.created_at;
      j["CreatedSince"] = r.created_since;
      j["Digest"] = r.digest;
      j["ID"] = r.id;
      j["Repository"] = r.repo;
      j["SharedSize"] = "N/A";
      j["Size"] = HumanSize(static_cast<double>(r.size));
      j["Tag"] = r.tag;
      j["UniqueSize"] = "N/A";
      j["VirtualSize"] = HumanSize(static_cast<double>(r.size));
      std::printf("%s\n", j.dump().c_str());
    }
    return kExitOk;
  }
  Table t;
  if (f.GetBool("digests")) t.Header({"REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"});
  else t.Header({"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"});
  for (auto& r : rows) {
    if (f.GetBool("digests")) t.Row({r.repo, r.tag, r.digest, r.id, r.created_since, HumanSize(static_cast<double>(r.size))});
    else t.Row({r.repo, r.tag, r.id, r.created_since, HumanSize(static_cast<double>(r.size))});
  }
  t.Print(stdout);
  return kExitOk;
}

}  // namespace xbuild::cli
