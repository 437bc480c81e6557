#!/usr/bin/env bash
# Prebuilt artefacts for teams without a Rust toolchain: static Linux (musl) binaries of
# `messaging-mock` and `messaging-conformance` in target/artifacts/, and with --image the
# container image (Containerfile, FROM scratch) built from them with buildah.
#
#   tools/build-artifacts.sh                 # binaries only
#   tools/build-artifacts.sh --image         # and the image messaging-mock:dev
#   tools/build-artifacts.sh --image --tag messaging-mock:0.1.0
#   tools/build-artifacts.sh --no-strip      # keep the debug line tables (about 5x larger)
#
# The copies in target/artifacts/ lose their debug info (`strip --strip-debug`: symbols stay,
# so a backtrace still names functions; panic messages keep their file:line); the binaries
# cargo built under target/x86_64-unknown-linux-musl/release/ keep it. Also there: SHA256SUMS,
# and tmp/ (empty, mode 1777), which becomes the image's /tmp.
#
# Environment: CARGO_TARGET_DIR (cargo's, honoured), BUILDAH_ISOLATION (default chroot) and
# STORAGE_DRIVER (default vfs): the defaults work in a sandbox without a daemon or runc;
# on a workstation `BUILDAH_ISOLATION=oci STORAGE_DRIVER=overlay` is faster. SOURCE sets the
# image's org.opencontainers.image.source label (the repository URL). See docs/container.md.
set -euo pipefail

TARGET=x86_64-unknown-linux-musl
BINARIES=(messaging-mock messaging-conformance)
IMAGE=0
STRIP=1
TAG=messaging-mock:dev

usage() {
  # The comment block at the top of this file.
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --image) IMAGE=1 ;;
    --no-strip) STRIP=0 ;;
    --tag)
      [ $# -ge 2 ] || { echo "build-artifacts: --tag needs a value (e.g. messaging-mock:0.1.0)" >&2; exit 2; }
      TAG="$2"
      shift
      ;;
    --tag=*) TAG="${1#--tag=}" ;;
    -h | --help) usage; exit 0 ;;
    *) echo "build-artifacts: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

die() {
  echo "build-artifacts: $*" >&2
  exit 1
}

# need COMMAND HOW-TO-INSTALL
need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not on PATH: $2"
}

cd "$(dirname "$0")/.."
ROOT="$PWD"

need cargo "install Rust with rustup (https://rustup.rs)"
need rustup "the musl target is added with rustup; install Rust with rustup (https://rustup.rs), or add the target $TARGET to your toolchain yourself"
need file "install it (Debian/Ubuntu: apt-get install file); it checks the binaries are static"
# ring (TLS) compiles C for the musl target: musl's gcc wrapper, unless CC for it is set.
if [ -z "${CC_x86_64_unknown_linux_musl:-}" ]; then
  need musl-gcc "install it (Debian/Ubuntu: apt-get install musl-tools): ring, the TLS crypto, builds C code for the musl target, or set CC_x86_64_unknown_linux_musl to a C compiler for it"
  export CC_x86_64_unknown_linux_musl=musl-gcc
fi
if [ "$STRIP" = 1 ]; then
  need strip "install binutils (Debian/Ubuntu: apt-get install binutils), or pass --no-strip"
fi
if [ "$IMAGE" = 1 ]; then
  need buildah "install it (Debian/Ubuntu: apt-get install buildah), or build the image with docker as docs/container.md says (copy .containerignore to .dockerignore first)"
fi

if ! rustup target list --installed | grep -qx "$TARGET"; then
  echo "== rustup target add $TARGET"
  rustup target add "$TARGET"
fi

echo "== cargo build --release --locked --target $TARGET -p mock-server -p conformance"
started=$SECONDS
cargo build --release --locked --target "$TARGET" -p mock-server -p conformance
echo "   built in $((SECONDS - started)) s"

OUT="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$OUT" in /*) ;; *) OUT="$ROOT/$OUT" ;; esac
OUT="$OUT/$TARGET/release"
ARTIFACTS="$ROOT/target/artifacts"
mkdir -p "$ARTIFACTS"

echo "== static check, copy to target/artifacts/"
for bin in "${BINARIES[@]}"; do
  path="$OUT/$bin"
  [ -x "$path" ] || die "cargo did not produce $path"
  description="$(file -b "$path")"
  case "$description" in
    *"statically linked"* | *"static-pie linked"*) ;;
    *) die "$path is not static: file says: $description" ;;
  esac
  # A second opinion when ldd is there: a static binary has no dynamic dependencies.
  if command -v ldd >/dev/null 2>&1; then
    if deps="$(ldd "$path" 2>&1)"; then
      case "$deps" in
        *"statically linked"* | *"not a dynamic executable"*) ;;
        *) die "$path has dynamic dependencies: ldd says: $deps" ;;
      esac
    fi
  fi
  cp "$path" "$ARTIFACTS/$bin.tmp"
  if [ "$STRIP" = 1 ]; then
    strip --strip-debug "$ARTIFACTS/$bin.tmp"
  fi
  mv -f "$ARTIFACTS/$bin.tmp" "$ARTIFACTS/$bin"
  printf '   %-24s %9s bytes  %s\n' "$bin" "$(stat -c %s "$ARTIFACTS/$bin")" "${description%%,*}"
done
(cd "$ARTIFACTS" && sha256sum "${BINARIES[@]}" >SHA256SUMS)
# The image's /tmp (COPY target/artifacts/ / keeps its mode): the kit makes each case's working
# directory there, and a scratch image has none.
mkdir -p "$ARTIFACTS/tmp"
chmod 1777 "$ARTIFACTS/tmp"
"$ARTIFACTS/messaging-mock" --version

if [ "$IMAGE" = 1 ]; then
  VERSION="$(cargo pkgid -p mock-server | sed 's/.*[#@]//')"
  REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "== buildah bud -t $TAG (version $VERSION)"
  started=$SECONDS
  buildah bud \
    --isolation "${BUILDAH_ISOLATION:-chroot}" \
    --storage-driver "${STORAGE_DRIVER:-vfs}" \
    --format docker \
    --build-arg "VERSION=$VERSION" \
    --build-arg "REVISION=$REVISION" \
    ${SOURCE:+--build-arg "SOURCE=$SOURCE"} \
    -f Containerfile \
    -t "$TAG" \
    .
  echo "   image built in $((SECONDS - started)) s"
  buildah images --storage-driver "${STORAGE_DRIVER:-vfs}" "$TAG"
fi
