#!/usr/bin/env bash
# Assembles, offline, a root filesystem that can compile C: the files of the host's installed
# Debian packages in the Depends/Pre-Depends closure of gcc and libc6-dev (gcc, binutils,
# libc6-dev and the libraries they load), plus busybox-static for /bin/sh and the usual
# utilities. The examples' build stages use it as their base (`xbuild import ROOTFS
# toolchain:local`), so neither the tests nor the main job reach Debian's mirror.
#
# usage: scripts/make-toolchain-rootfs.sh ROOTFS      (ROOTFS must not exist, or be empty)
#
# Deterministic for a given host: the package set comes from dpkg's database alone and the files
# are copied with their modes and mtimes. Documentation (doc, man, info, locale, lintian) is left
# out: nothing reads it at build time.
set -euo pipefail

ROOTFS=${1:?usage: make-toolchain-rootfs.sh ROOTFS}
if [[ -e $ROOTFS && -n $(ls -A "$ROOTFS") ]]; then
  echo "make-toolchain-rootfs: $ROOTFS is not empty" >&2
  exit 2
fi
command -v dpkg-query >/dev/null || { echo "make-toolchain-rootfs: needs a Debian host (dpkg-query)" >&2; exit 2; }
BUSYBOX=/bin/busybox
[[ -x $BUSYBOX ]] || { echo "make-toolchain-rootfs: busybox-static is missing: run scripts/setup-deps.sh" >&2; exit 2; }

ARCH=$(dpkg --print-architecture)

# One dpkg-query call reads the whole database. The separator is \x1f because the fields contain
# commas, pipes and spaces, and a tab (IFS whitespace) would collapse empty fields.
declare -A installed provider depends
while IFS=$'\x1f' read -r pkg arch status provides deps predeps; do
  [[ $status == "install ok installed" ]] || continue
  # Only the native architecture (and `all`): a foreign libc6:i386 is not what gcc runs on.
  [[ $arch == "$ARCH" || $arch == all ]] || continue
  installed[$pkg]=1
  depends[$pkg]="$deps,$predeps"
  IFS=',' read -ra provs <<< "$provides"
  for v in "${provs[@]}"; do
    v=${v%%(*}; v=${v//[[:space:]]/}; v=${v%%:*}
    # The first installed provider of a virtual package wins; dpkg lists packages sorted, so
    # the choice is stable.
    [[ -n $v && -z ${provider[$v]:-} ]] && provider[$v]=$pkg
  done
done < <(dpkg-query -W -f=$'${Package}\x1f${Architecture}\x1f${Status}\x1f${Provides}\x1f${Depends}\x1f${Pre-Depends}\n')

for root in gcc libc6-dev; do
  [[ -n ${installed[$root]:-} ]] || { echo "make-toolchain-rootfs: $root is not installed: run scripts/setup-deps.sh" >&2; exit 2; }
done

# Breadth-first over Depends and Pre-Depends. For `a | b` the first alternative that is
# installed (or provided by an installed package) is taken; a dependency with no installed
# alternative is skipped (dpkg itself accepted that state, so nothing at run time needs it).
declare -A seen
queue=(gcc libc6-dev)
closure=()
while ((${#queue[@]})); do
  pkg=${queue[0]}
  queue=("${queue[@]:1}")
  [[ -n ${seen[$pkg]:-} ]] && continue
  seen[$pkg]=1
  closure+=("$pkg")
  IFS=',' read -ra deps <<< "${depends[$pkg]}"
  for dep in "${deps[@]}"; do
    IFS='|' read -ra alts <<< "$dep"
    for alt in "${alts[@]}"; do
      alt=${alt%%(*}; alt=${alt//[[:space:]]/}; alt=${alt%%:*}
      [[ -z $alt ]] && continue
      if [[ -n ${installed[$alt]:-} ]]; then queue+=("$alt"); break; fi
      if [[ -n ${provider[$alt]:-} ]]; then queue+=("${provider[$alt]}"); break; fi
    done
  done
done
mapfile -t closure < <(printf '%s\n' "${closure[@]}" | sort)
echo "make-toolchain-rootfs: ${#closure[@]} packages: ${closure[*]}" >&2

mkdir -p "$ROOTFS"
ROOTFS=$(realpath "$ROOTFS")
# Debian 12 is /usr-merged: packages still list /bin, /lib, /lib64 and /sbin paths, which the
# host resolves through links to usr/. The rootfs gets the same links, and tar rewrites those
# prefixes while copying so that every file lands under usr/ exactly once.
mkdir -p "$ROOTFS"/usr/{bin,sbin,lib,lib64} "$ROOTFS"/{etc,root,tmp,dev,proc,sys}
chmod 1777 "$ROOTFS/tmp"
chmod 700 "$ROOTFS/root"
for d in bin sbin lib lib64; do ln -s "usr/$d" "$ROOTFS/$d"; done

# Every path the packages own that exists on the host, parents before children (sort), with the
# documentation trees dropped. `dpkg -L` also prints "diverted by" notes: only absolute paths
# are kept.
LIST=$(mktemp)
trap 'rm -f "$LIST"' EXIT
for pkg in "${closure[@]}"; do
  # A package installed for two architectures must be named with the native one.
  dpkg -L "$pkg" 2>/dev/null || dpkg -L "$pkg:$ARCH"
done | grep '^/' \
  | grep -Ev '^/usr/share/(doc|man|info|locale|lintian|bug|gdb)(/|$)' \
  | grep -Ev '^/(bin|sbin|lib|lib64)$' \
  | sort -u \
  | while IFS= read -r p; do
      # A path the image trimmed (path-exclude in dpkg.cfg.d) is simply absent.
      [[ -e $p || -L $p ]] && printf '%s\n' "${p#/}"
    done > "$LIST"

# --no-recursion: directories are created with their own modes, but only what is listed is
# copied. The transform rewrites member names only (flag S: symlink targets are left as they
# are; absolute targets such as /lib/x86_64-linux-gnu/... resolve through the links above).
tar -C / -c --no-recursion --null -T <(tr '\n' '\0' < "$LIST") \
    --transform='s,^\(bin\|sbin\|lib\|lib64\)/,usr/\1/,S' \
  | tar -C "$ROOTFS" -x --keep-directory-symlink --same-permissions --numeric-owner

# A shell and the utilities a build script expects. dash is in gcc's closure on no Debian
# release; busybox-static needs no libraries. Applets never replace a file a package installed.
if [[ ! -e $ROOTFS/usr/bin/sh ]]; then
  cp "$BUSYBOX" "$ROOTFS/usr/bin/busybox"
  for app in $("$BUSYBOX" --list); do
    [[ -e $ROOTFS/usr/bin/$app || -L $ROOTFS/usr/bin/$app ]] || ln -s busybox "$ROOTFS/usr/bin/$app"
  done
fi

# Users for USER instructions in build stages; no ld.so.cache is needed (Debian's loader
# searches the multiarch directories by default).
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$ROOTFS/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$ROOTFS/etc/group"
echo "make-toolchain-rootfs: $(wc -l < "$LIST") paths, $(du -sh "$ROOTFS" | cut -f1) in $ROOTFS" >&2
