// xbuild save -o FILE [--format docker|oci] IMAGE [IMAGE...]
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "cache/archive.h"
#include "cli/cli.h"
#include "core/fs.h"

namespace xbuild::cli {

int RunSave(Cli& cli, const std::vector<std::string>& args) {
  Flags f;
  f.String("output", 'o', "", "Write to a file, instead of STDOUT");
  f.String("format", 0, "docker", "Archive format: docker or oci");
  std::vector<std::string> pos;
  int code = 0;
  if (!ParseCommand(cli, f, "save", "save [OPTIONS] IMAGE [IMAGE...]", args, pos, code, 1)) return code;
  cache::ArchiveFormat format;
  if (f.GetString("format") == "docker") format = cache::ArchiveFormat::kDocker;
  else if (f.GetString("format") == "oci") format = cache::ArchiveFormat::kOci;
  else return cli.UsageError("save", "invalid --format \"" + f.GetString("format") + "\": want docker or oci");
  std::string out = f.GetString("output");
  if (out.empty() && ::isatty(1)) {
    return cli.Fail(core::Error(core::Code::kInvalidArgument,
                                "cowardly refusing to save to a terminal. Use the -o flag or redirect"));
  }
  auto store = cli.Store();
  if (!store.ok()) return cli.Fail(store.error());
  if (out.empty()) {
    auto s = cache::SaveImages(**store, pos, format, 1);
    return s.ok() ? kExitOk : cli.Fail(s.error());
  }
  // Write next to the destination and rename, so a failed save leaves no partial file.
  std::string tmp = out + ".xbuild-tmp";
  auto fd = core::Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!fd.ok()) return cli.Fail(fd.error());
  auto s = cache::SaveImages(**store, pos, format, fd->get());
  if (s.ok() && ::fsync(fd->get()) != 0) s = core::SysError("fsync " + tmp);
  fd->Reset();
  if (s.ok() && ::rename(tmp.c_str(), out.c_str()) != 0) s = core::SysError("rename to " + out);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return cli.Fail(s.error());
  }
  return kExitOk;
}

}  // namespace xbuild::cli
