#!/bin/sh
# Run distchat and ngircd through the same chat-perf scenarios; see benchmarks/README.md.
set -eu
cd "$(dirname "$0")/.."
exec python -m benchmarks.run "$@"
