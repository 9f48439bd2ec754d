// COPY and ADD: sources from the context, a stage, an image or a URL; heredoc files; --link,
// --parents, --exclude, --chown, --chmod.
#include <algorithm>
#include <cstring>

#include "core/json.h"
#include "core/path.h"
#include "core/strings.h"
#include "frontend/lowerer.h"
#include "frontend/source_url.h"

namespace xbuild::frontend::lowering {

namespace {

// What a COPY --parents source reads from the context: the path up to its first component with
// a wildcard (`**` included), so that the context selection holds every possible match.
std::string ParentsBase(const std::string& src) {
  std::string out;
  for (auto& part : core::Split(src, '/')) {
    if (part.find_first_of("*?[") != std::string::npos) break;
    out += (out.empty() ? "" : "/") + part;
  }
  return out.empty() ? "." : out;
}

// The heredoc a COPY/ADD source word names ("<<EOF" or "<<-EOF"), if any.
const Heredoc* FindHeredoc(const std::vector<Heredoc>& heredocs, const std::string& source) {
  for (auto& h : heredocs)
    if (source == "<<" + h.name || source == "<<-" + h.name) return &h;
  return nullptr;
}

bool ValidChmod(const std::string& s) {
  if (s.empty()) return true;
  if (std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '7'; })) return s.size() <= 4;
  // symbolic: [ugoa]*[+-=][rwxXst]* separated by commas
  for (char c : s) {
    if (!std::strchr("ugoa+-=rwxXst,", c)) return false;
  }
  return s.find_first_of("+-=") != std::string::npos;
}

// A git checkout as a source (ADD <git url>, --build-context NAME=<git url>).
Result<solver::SourceOp> GitSourceOp(const GitRef& g, bool keep_git_dir, const std::string& checksum,
                                     const std::string& where) {
  if (!checksum.empty() &&
      (checksum.size() > 64 || !std::all_of(checksum.begin(), checksum.end(), [](char ch) {
        return std::isxdigit(static_cast<unsigned char>(ch));
      }))) {
    return Error(Code::kInvalidArgument,
                 where + "--checksum of a git source is a commit id (hex), got " + checksum);
  }
  solver::SourceOp src;
  std::string shown = g.remote.find("://") == std::string::npos
                          ? g.remote
                          : g.remote.substr(g.remote.find("://") + 3);
  src.identifier = "git://" + shown + (g.ref.empty() ? "" : "#" + g.ref);
  src.attrs["git.fullurl"] = g.remote;
  if (!g.ref.empty()) src.attrs["git.ref"] = g.ref;
  if (!g.subdir.empty()) src.attrs["git.subdir"] = g.subdir;
  if (keep_git_dir) src.attrs["git.keepgitdir"] = "true";
  if (!checksum.empty()) src.attrs["git.checksum"] = core::ToLower(checksum);
  return src;
}

}  // namespace

// ADD <url>: a source of its own that the FileOp copies from, as dockerfile2llb lowers it: an
// http source holding one file (copied by its name), or a git checkout (its whole tree, "/").
// The URL is the progress name; the fetch itself happens in the runner.
Result<Output> Lowerer::UrlSource(const std::string& url, const CopyCmd& c,
                                  const std::string& checksum, const std::string& where,
                                  std::string* copy_src) {
  solver::SourceOp src;
  solver::VertexMeta meta;
  meta.description = url;
  if (IsGitUrl(url)) {
    auto g = ParseGitRef(url);
    if (!g.ok()) return Error(Code::kInvalidArgument, where + g.error().message());
    // A file:// repository is a directory of this machine outside the context: a Dockerfile
    // must not be able to read it. Whoever runs the build can name it as the context.
    if (g->local) {
      return Error(Code::kInvalidArgument,
                   where + url + ": ADD does not read file:// repositories (they are outside " +
                       "the build context); build from it as a git context instead");
    }
    XB_ASSIGN(src, GitSourceOp(*g, c.keep_git_dir, checksum, where));
    *copy_src = "/";
  } else {
    if (!checksum.empty()) {
      auto d = core::Digest::Parse(checksum);
      if (!d.ok()) {
        return Error(Code::kInvalidArgument,
                     where + "invalid --checksum " + checksum + ": want sha256:<64 hex digits>");
      }
      src.attrs["http.checksum"] = d->String();
    }
    src.identifier = url;
    *copy_src = UrlFilename(url);
    src.attrs["http.filename"] = *copy_src;
  }
  return solver::MakeVertex(src, {}, meta);
}

Result<std::optional<Output>> Lowerer::NamedContext(const std::string& name,
                                                    const std::vector<std::string>& includes,
                                                    const image::Platform& p, const std::string& where,
                                                    std::optional<image::Reference>* image) {
  auto it = opts_.named_contexts.find(name);
  if (it == opts_.named_contexts.end()) return std::optional<Output>();
  const std::string& value = it->second;
  if (value.starts_with("docker-image://")) {
    auto ref = image::ParseReference(value.substr(15));
    if (!ref.ok()) return Error(Code::kInvalidArgument, where + "--build-context " + name + ": " + ref.error().message());
    if (image) *image = *ref;
    return std::optional<Output>(ImageSource(*ref, p, "[context " + name + "] " + ref->String()));
  }
  if (IsGitUrl(value)) {  // file:// too: whoever runs the build named it
    auto g = ParseGitRef(value);
    if (!g.ok()) return Error(Code::kInvalidArgument, where + "--build-context " + name + ": " + g.error().message());
    XB_ASSIGN(solver::SourceOp git, GitSourceOp(*g, false, "", where));
    solver::VertexMeta meta;
    meta.description = "[context " + name + "] " + value;
    return std::optional<Output>(solver::MakeVertex(git, {}, meta));
  }
  if (IsHttpUrl(value)) {
    return Error(Code::kInvalidArgument, where + "--build-context " + name + "=" + value +
                                             ": an HTTP context (a tarball) is not supported yet; use a directory, docker-image:// or git");
  }
  solver::SourceOp src;
  src.identifier = "local://" + name;
  if (!includes.empty()) src.attrs["local.followpaths"] = core::CanonicalJson(core::Json(includes));
  solver::VertexMeta meta;
  meta.description = "[internal] load build context " + name;
  return std::optional<Output>(solver::MakeVertex(src, {}, meta));
}

Status Lowerer::Apply(StageState& st, Step& step, const CopyCmd& c) {
  image::ContainerConfig& cc = st.config.config;
  XB_ASSIGN(std::string dest, Expand(c.dest, step.env, step.line, step.kw));
  std::vector<std::string> sources;
  std::string checksum;
  if (!c.checksum.empty()) {
    XB_ASSIGN(checksum, Expand(c.checksum, step.env, step.line, step.kw));
  }
  auto is_url = [&](const std::string& s) { return IsHttpUrl(s) || IsGitUrl(s); };
  for (auto& s : c.sources) {
    if (FindHeredoc(c.heredocs, s)) {
      sources.push_back(s);
      continue;
    }
    XB_ASSIGN(std::string e, Expand(s, step.env, step.line, step.kw));
    if (is_url(e) && (!c.is_add || !c.from.empty())) {
      return Error(Code::kInvalidArgument, step.where + "source can't be a URL for " + step.kw);
    }
    if (!checksum.empty() && !is_url(e)) {
      return Error(Code::kInvalidArgument,
                   step.where + "checksum can't be specified for non-HTTP(S) sources: " + e);
    }
    sources.push_back(e);
  }
  std::string workdir = cc.working_dir.empty() ? "/" : cc.working_dir;
  // An empty destination (`COPY f $unset`) is the working directory, as ".".
  bool dest_dir = dest.empty() || dest.ends_with("/") || dest == "." || dest.ends_with("/.");
  if (sources.size() > 1 && !dest_dir) {
    return Error(Code::kInvalidArgument, step.where + "When using " + step.kw + " with more than one source file, the destination must be a directory and end with a /");
  }
  std::string abs_dest = dest.starts_with("/") ? dest : workdir + "/" + dest;
  abs_dest = core::CleanPath(abs_dest);
  if (dest_dir && abs_dest != "/") abs_dest += "/";
  if (!ValidChmod(c.chmod)) return Error(Code::kInvalidArgument, step.where + "invalid --chmod=" + c.chmod);
  std::optional<solver::ChownOpt> chown;
  if (!c.chown.empty()) {
    XB_ASSIGN(std::string ch, Expand(c.chown, step.env, step.line, step.kw));
    auto colon = ch.find(':');
    chown = solver::ChownOpt{colon == std::string::npos ? ch : ch.substr(0, colon), colon == std::string::npos ? "" : ch.substr(colon + 1)};
  }
  // The source tree: the context, a named context, a stage, or an image. What a context
  // source selects: the sources' paths (heredocs and URLs are not read from it).
  std::vector<std::string> includes;
  for (auto& s : sources)
    if (!FindHeredoc(c.heredocs, s) && !is_url(s)) includes.push_back(core::CleanPath(c.parents ? ParentsBase(s) : s));
  Output src;
  std::string from = c.from;
  if (!from.empty()) {
    XB_ASSIGN(from, Expand(from, step.env, step.line, step.kw));
    XB_ASSIGN(std::optional<Output> named, NamedContext(from, includes, opts_.target_platform, step.where));
    if (named) {
      src = *named;
    } else if (IsNumber(from)) {
      int idx = std::atoi(from.c_str());
      if (idx >= st.index) return Error(Code::kInvalidArgument, step.where + "stage " + from + " needs to be defined before current stage");
      src = states_[static_cast<size_t>(idx)].fs;
    } else {
      XB_ASSIGN(int idx, FindStage(from, st.index, step.line, step.kw + " --from"));
      if (idx >= 0) {
        src = states_[static_cast<size_t>(idx)].fs;
      } else {
        auto ref = image::ParseReference(from);
        if (!ref.ok()) return Error(Code::kInvalidArgument, step.where + "--from: " + ref.error().message());
        src = ImageSource(*ref, opts_.target_platform, "FROM " + ref->String());
      }
    }
  } else {
    // Only heredocs (or URLs): nothing is read from the context, so the step neither
    // depends on it nor needs one (`xbuild build - < Dockerfile`).
    if (!includes.empty()) {
      XB_ASSIGN(src, ContextSource(includes));
    }
  }
  solver::FileOp fop;
  std::vector<Output> inputs{c.link ? Output{} : st.fs, src};
  for (auto& s : sources) {
    if (const Heredoc* hd = FindHeredoc(c.heredocs, s)) {
      solver::MkfileAction mk;
      mk.path = dest_dir ? abs_dest + hd->name : abs_dest;
      mk.data = hd->content;
      if (hd->expand) {
        XB_ASSIGN(mk.data, ExpandHeredoc(hd->content, step.env, step.line, step.kw));
      }
      mk.chown = chown;
      if (!c.chmod.empty() && std::all_of(c.chmod.begin(), c.chmod.end(), [](char ch) { return ch >= '0' && ch <= '7'; })) {
        mk.mode = static_cast<uint32_t>(std::strtoul(c.chmod.c_str(), nullptr, 8));
      }
      fop.actions.push_back({fop.actions.empty() ? 0 : -1, mk});
      continue;
    }
    solver::CopyAction cp;
    cp.src_input = 1;
    cp.src = s;
    if (is_url(s)) {
      XB_ASSIGN(Output remote, UrlSource(s, c, checksum, step.where, &cp.src));
      inputs.push_back(remote);
      cp.src_input = static_cast<int>(inputs.size()) - 1;
    }
    cp.dest = abs_dest;
    cp.chown = chown;
    cp.chmod = c.chmod;
    cp.exclude_patterns = c.excludes;
    // As dockerfile2llb: a wildcard may match nothing (`COPY foo nomatch* /`); the FileOp fails
    // only when no source of the COPY matched anything.
    cp.allow_empty_wildcard = true;
    // A remote archive is not unpacked (BuildKit's rule), only a context one.
    cp.attempt_unpack = c.is_add && c.unpack.value_or(true) && c.from.empty() && !is_url(s);
    cp.timestamp = opts_.source_date_epoch;
    if (c.parents) {
      cp.parents = true;
      if (!abs_dest.ends_with("/")) {  // always a directory
        abs_dest += "/";
        cp.dest = abs_dest;
      }
    }
    fop.actions.push_back({fop.actions.empty() ? 0 : -1, cp});
  }
  Output layer = solver::MakeVertex(fop, inputs, step.meta);
  if (c.link) {
    st.fs = st.fs.scratch() ? layer : solver::MakeVertex(solver::MergeOp{}, {st.fs, layer}, step.meta);
  } else {
    st.fs = layer;
  }
  AddHistory(st, HistoryFor(step.inst, JoinArgs(sources) + " " + dest), false);
  return core::Ok();
}

}  // namespace xbuild::frontend::lowering
