// libarchive, opened on first use.
//
// Linked at start, libarchive loads ten libraries with it (libxml2 and ICU for the xar format
// xbuild never reads, nettle, acl, the codecs): ~2 ms of every process, `xbuild run` and
// `xbuild ps` included, that never touches a tarball. So xbuild does not link it: this file
// defines each libarchive function xbuild calls, with the declaration from <archive.h> or
// <archive_entry.h> (the compiler checks every definition against it), and each one calls
// libarchive's own, looked up in libarchive.so.13 at its first call. Call sites are unchanged.
//
// A function xbuild starts to call must be added here (the link fails until it is). The
// executable does not export these names (no -rdynamic), so libarchive's calls to itself never
// land here. If the library cannot be loaded, the first call says why and exits with 125 (no
// libarchive call site could carry the error: a broken installation, not bad input).
#include <archive.h>
#include <archive_entry.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/dynlib.h"

namespace {

using xbuild::core::DynLib;

const DynLib& Library() {
  static const DynLib lib = [] {
    auto opened = DynLib::Open("libarchive.so.13", "libarchive13");
    if (!opened.ok()) {
      std::fprintf(stderr, "xbuild: %s\n", opened.error().message().c_str());
      std::_Exit(125);
    }
    return std::move(opened).value();
  }();
  return lib;
}

template <class F>
F Resolve(const char* name) {
  F fn = nullptr;
  auto bound = Library().Bind(fn, name);
  if (!bound.ok()) {
    std::fprintf(stderr, "xbuild: %s\n", bound.error().message().c_str());
    std::_Exit(125);
  }
  return fn;
}

}  // namespace

// fn: libarchive's own `name`, resolved once.
#define XB_ARCHIVE_FN(name) static const auto fn = Resolve<decltype(&::name)>(#name)

extern "C" {

// Variadic: formatted here and handed on as one "%s" argument.
void archive_set_error(struct archive* a, int err, const char* fmt, ...) {
  XB_ARCHIVE_FN(archive_set_error);
  va_list ap;
  va_start(ap, fmt);
  char buf[1024];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fn(a, err, "%s", buf);
}

time_t archive_entry_atime(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_atime);
  return fn(a0);
}

int archive_entry_atime_is_set(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_atime_is_set);
  return fn(a0);
}

long archive_entry_atime_nsec(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_atime_nsec);
  return fn(a0);
}

void archive_entry_copy_hardlink(struct archive_entry* a0, const char* a1) {
  XB_ARCHIVE_FN(archive_entry_copy_hardlink);
  return fn(a0, a1);
}

void archive_entry_copy_pathname(struct archive_entry* a0, const char* a1) {
  XB_ARCHIVE_FN(archive_entry_copy_pathname);
  return fn(a0, a1);
}

void archive_entry_copy_stat(struct archive_entry* a0, const struct stat* a1) {
  XB_ARCHIVE_FN(archive_entry_copy_stat);
  return fn(a0, a1);
}

void archive_entry_copy_symlink(struct archive_entry* a0, const char* a1) {
  XB_ARCHIVE_FN(archive_entry_copy_symlink);
  return fn(a0, a1);
}

mode_t archive_entry_filetype(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_filetype);
  return fn(a0);
}

void archive_entry_free(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_free);
  return fn(a0);
}

la_int64_t archive_entry_gid(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_gid);
  return fn(a0);
}

const char* archive_entry_gname(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_gname);
  return fn(a0);
}

const char* archive_entry_hardlink(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_hardlink);
  return fn(a0);
}

time_t archive_entry_mtime(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_mtime);
  return fn(a0);
}

long archive_entry_mtime_nsec(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_mtime_nsec);
  return fn(a0);
}

struct archive_entry* archive_entry_new() {
  XB_ARCHIVE_FN(archive_entry_new);
  return fn();
}

const char* archive_entry_pathname(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_pathname);
  return fn(a0);
}

const char* archive_entry_pathname_utf8(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_pathname_utf8);
  return fn(a0);
}

mode_t archive_entry_perm(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_perm);
  return fn(a0);
}

dev_t archive_entry_rdevmajor(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_rdevmajor);
  return fn(a0);
}

dev_t archive_entry_rdevminor(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_rdevminor);
  return fn(a0);
}

void archive_entry_set_filetype(struct archive_entry* a0, unsigned int a1) {
  XB_ARCHIVE_FN(archive_entry_set_filetype);
  return fn(a0, a1);
}

void archive_entry_set_gid(struct archive_entry* a0, la_int64_t a1) {
  XB_ARCHIVE_FN(archive_entry_set_gid);
  return fn(a0, a1);
}

void archive_entry_set_hardlink(struct archive_entry* a0, const char* a1) {
  XB_ARCHIVE_FN(archive_entry_set_hardlink);
  return fn(a0, a1);
}

void archive_entry_set_mtime(struct archive_entry* a0, time_t a1, long a2) {
  XB_ARCHIVE_FN(archive_entry_set_mtime);
  return fn(a0, a1, a2);
}

void archive_entry_set_pathname(struct archive_entry* a0, const char* a1) {
  XB_ARCHIVE_FN(archive_entry_set_pathname);
  return fn(a0, a1);
}

void archive_entry_set_perm(struct archive_entry* a0, mode_t a1) {
  XB_ARCHIVE_FN(archive_entry_set_perm);
  return fn(a0, a1);
}

void archive_entry_set_rdevmajor(struct archive_entry* a0, dev_t a1) {
  XB_ARCHIVE_FN(archive_entry_set_rdevmajor);
  return fn(a0, a1);
}

void archive_entry_set_rdevminor(struct archive_entry* a0, dev_t a1) {
  XB_ARCHIVE_FN(archive_entry_set_rdevminor);
  return fn(a0, a1);
}

void archive_entry_set_size(struct archive_entry* a0, la_int64_t a1) {
  XB_ARCHIVE_FN(archive_entry_set_size);
  return fn(a0, a1);
}

void archive_entry_set_symlink(struct archive_entry* a0, const char* a1) {
  XB_ARCHIVE_FN(archive_entry_set_symlink);
  return fn(a0, a1);
}

void archive_entry_set_uid(struct archive_entry* a0, la_int64_t a1) {
  XB_ARCHIVE_FN(archive_entry_set_uid);
  return fn(a0, a1);
}

la_int64_t archive_entry_size(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_size);
  return fn(a0);
}

int archive_entry_size_is_set(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_size_is_set);
  return fn(a0);
}

const char* archive_entry_symlink(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_symlink);
  return fn(a0);
}

const char* archive_entry_symlink_utf8(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_symlink_utf8);
  return fn(a0);
}

la_int64_t archive_entry_uid(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_uid);
  return fn(a0);
}

const char* archive_entry_uname(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_uname);
  return fn(a0);
}

void archive_entry_xattr_add_entry(struct archive_entry* a0, const char* a1, const void* a2,
                                   size_t a3) {
  XB_ARCHIVE_FN(archive_entry_xattr_add_entry);
  return fn(a0, a1, a2, a3);
}

int archive_entry_xattr_next(struct archive_entry* a0, const char** a1, const void** a2,
                             size_t* a3) {
  XB_ARCHIVE_FN(archive_entry_xattr_next);
  return fn(a0, a1, a2, a3);
}

int archive_entry_xattr_reset(struct archive_entry* a0) {
  XB_ARCHIVE_FN(archive_entry_xattr_reset);
  return fn(a0);
}

const char* archive_error_string(struct archive* a0) {
  XB_ARCHIVE_FN(archive_error_string);
  return fn(a0);
}

la_ssize_t archive_read_data(struct archive* a0, void* a1, size_t a2) {
  XB_ARCHIVE_FN(archive_read_data);
  return fn(a0, a1, a2);
}

int archive_read_data_block(struct archive* a0, const void** a1, size_t* a2, la_int64_t* a3) {
  XB_ARCHIVE_FN(archive_read_data_block);
  return fn(a0, a1, a2, a3);
}

int archive_read_free(struct archive* a0) {
  XB_ARCHIVE_FN(archive_read_free);
  return fn(a0);
}

struct archive* archive_read_new() {
  XB_ARCHIVE_FN(archive_read_new);
  return fn();
}

int archive_read_next_header(struct archive* a0, struct archive_entry** a1) {
  XB_ARCHIVE_FN(archive_read_next_header);
  return fn(a0, a1);
}

int archive_read_open(struct archive* a0, void* a1, archive_open_callback* a2,
                      archive_read_callback* a3, archive_close_callback* a4) {
  XB_ARCHIVE_FN(archive_read_open);
  return fn(a0, a1, a2, a3, a4);
}

int archive_read_open_fd(struct archive* a0, int a1, size_t a2) {
  XB_ARCHIVE_FN(archive_read_open_fd);
  return fn(a0, a1, a2);
}

int archive_read_open_filename(struct archive* a0, const char* a1, size_t a2) {
  XB_ARCHIVE_FN(archive_read_open_filename);
  return fn(a0, a1, a2);
}

int archive_read_support_filter_all(struct archive* a0) {
  XB_ARCHIVE_FN(archive_read_support_filter_all);
  return fn(a0);
}

int archive_read_support_filter_bzip2(struct archive* a0) {
  XB_ARCHIVE_FN(archive_read_support_filter_bzip2);
  return fn(a0);
}

int archive_read_support_filter_gzip(struct archive* a0) {
  XB_ARCHIVE_FN(archive_read_support_filter_gzip);
  return fn(a0);
}

int archive_read_support_filter_xz(struct archive* a0) {
  XB_ARCHIVE_FN(archive_read_support_filter_xz);
  return fn(a0);
}

int archive_read_support_filter_zstd(struct archive* a0) {
  XB_ARCHIVE_FN(archive_read_support_filter_zstd);
  return fn(a0);
}

int archive_read_support_format_gnutar(struct archive* a0) {
  XB_ARCHIVE_FN(archive_read_support_format_gnutar);
  return fn(a0);
}

int archive_read_support_format_tar(struct archive* a0) {
  XB_ARCHIVE_FN(archive_read_support_format_tar);
  return fn(a0);
}

const char* archive_version_string() {
  XB_ARCHIVE_FN(archive_version_string);
  return fn();
}

int archive_write_add_filter_gzip(struct archive* a0) {
  XB_ARCHIVE_FN(archive_write_add_filter_gzip);
  return fn(a0);
}

int archive_write_add_filter_none(struct archive* a0) {
  XB_ARCHIVE_FN(archive_write_add_filter_none);
  return fn(a0);
}

int archive_write_close(struct archive* a0) {
  XB_ARCHIVE_FN(archive_write_close);
  return fn(a0);
}

la_ssize_t archive_write_data(struct archive* a0, const void* a1, size_t a2) {
  XB_ARCHIVE_FN(archive_write_data);
  return fn(a0, a1, a2);
}

int archive_write_finish_entry(struct archive* a0) {
  XB_ARCHIVE_FN(archive_write_finish_entry);
  return fn(a0);
}

int archive_write_free(struct archive* a0) {
  XB_ARCHIVE_FN(archive_write_free);
  return fn(a0);
}

int archive_write_header(struct archive* a0, struct archive_entry* a1) {
  XB_ARCHIVE_FN(archive_write_header);
  return fn(a0, a1);
}

struct archive* archive_write_new() {
  XB_ARCHIVE_FN(archive_write_new);
  return fn();
}

int archive_write_open(struct archive* a0, void* a1, archive_open_callback* a2,
                       archive_write_callback* a3, archive_close_callback* a4) {
  XB_ARCHIVE_FN(archive_write_open);
  return fn(a0, a1, a2, a3, a4);
}

int archive_write_open_fd(struct archive* a0, int a1) {
  XB_ARCHIVE_FN(archive_write_open_fd);
  return fn(a0, a1);
}

int archive_write_open_filename(struct archive* a0, const char* a1) {
  XB_ARCHIVE_FN(archive_write_open_filename);
  return fn(a0, a1);
}

int archive_write_set_bytes_in_last_block(struct archive* a0, int a1) {
  XB_ARCHIVE_FN(archive_write_set_bytes_in_last_block);
  return fn(a0, a1);
}

int archive_write_set_bytes_per_block(struct archive* a0, int a1) {
  XB_ARCHIVE_FN(archive_write_set_bytes_per_block);
  return fn(a0, a1);
}

int archive_write_set_format_option(struct archive* a0, const char* a1, const char* a2,
                                    const char* a3) {
  XB_ARCHIVE_FN(archive_write_set_format_option);
  return fn(a0, a1, a2, a3);
}

int archive_write_set_format_pax_restricted(struct archive* a0) {
  XB_ARCHIVE_FN(archive_write_set_format_pax_restricted);
  return fn(a0);
}

}  // extern "C"
