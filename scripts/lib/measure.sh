# The shared prologue of the scripts that measure and print figures (million-tokens.sh,
# cost-chunking.sh, report-bench.sh, report-pictures.sh). Source it, then
#   measure_init USAGE [NAME...] -- "$@"
# sets root (the checkout), build (--build-dir DIR, default build/), chunkflow (its program),
# work (a directory removed on exit) and changes to root; each NAME is an option --NAME VALUE
# that sets the caller's variable NAME. Anything else prints "usage: SCRIPT USAGE" and exits 2.
measure_init() {
  local usage=$1 name known
  local -a names=()
  shift
  while [ "$1" != "--" ]; do names+=("$1"); shift; done
  shift
  root=$(cd "$(dirname "${BASH_SOURCE[1]}")/.." && pwd)
  build="$root/build"
  while (($#)); do
    known=0
    if [ "$1" = "--build-dir" ] && (($# >= 2)); then
      build=$2 known=1
    else
      for name in "${names[@]}"; do
        if [ "$1" = "--$name" ] && (($# >= 2)); then printf -v "$name" '%s' "$2"; known=1; fi
      done
    fi
    ((known)) || { echo "usage: $(basename "${BASH_SOURCE[1]}") $usage" >&2; exit 2; }
    shift 2
  done
  chunkflow="$build/bin/chunkflow"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cd "$root"
}
