cat "$1/current/manifest.json" 2>/dev/null || {
  echo "no bundle is installed in $1: run crisp-edge deploy first (or bench with --model)" >&2
  exit 1
}
