#!/usr/bin/env bash
# GPU check: on a machine with an NVIDIA GPU, installs and builds gbt, generates the `1b` test
# model, runs `gbt node benchmark --gpu cuda --json` three times and once with `--gpu off`, and
# prints one line per run: decode/prefill tok/s, the offload used and the GPU named in the signed
# record. Meant to finish in under 8 minutes (the CPU run is kept short for that).
#
#   scripts/gpu-check.sh            # from the repository root
#   SKIP_INSTALL=1 scripts/gpu-check.sh   # reuse node_modules and the build
#
# Exits non-zero when a run fails (e.g. exit 12: --gpu cuda cannot run here).
set -euo pipefail

cd "$(dirname "$0")/.."
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu-check: nvidia-smi not found; this check needs a machine with an NVIDIA GPU and its driver." >&2
  exit 12
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2

if [[ "${SKIP_INSTALL:-0}" != "1" ]]; then
  echo "gpu-check: npm ci" >&2
  npm ci --no-audit --no-fund >&2
  echo "gpu-check: npm run build" >&2
  npm run build >&2
fi

GBT_HOME="$(mktemp -d "${TMPDIR:-/tmp}/gbt-gpu-check.XXXXXX")"
export GBT_HOME
trap 'rm -rf "$GBT_HOME"' EXIT
gbt() { node bin/run.js "$@"; }

echo "gpu-check: generating the 1b test model" >&2
gbt model test-init --shape 1b --json >/dev/null
gbt setup --yes --model gbt-test-1b --json >/dev/null

# One line from a signed record (stdin): decode/prefill tok/s, offload, GPU.
summarize() {
  node -e '
    let text = "";
    process.stdin.on("data", (c) => (text += c)).on("end", () => {
      const record = JSON.parse(text);
      const p = record.payload;
      const s = p.results.summary ?? {};
      const rate = (x) => (x && x.mean != null ? x.mean.toFixed(1) : "?");
      const g = p.gpu ?? {};
      const offload = g.gpuLayers != null && g.totalLayers != null ? `${g.gpuLayers}/${g.totalLayers} layers` : "unknown";
      const gpu = g.backend === "cpu" || !g.backend ? "none (CPU)" :
        `${g.backend} ${(g.devices ?? []).join(", ")}${g.vramTotalMB ? ` ${(g.vramTotalMB / 1024).toFixed(0)} GiB` : ""}${g.driver ? ` driver ${g.driver}` : ""}`;
      console.log(`${process.argv[1]}: decode ${rate(s.decodeTokPerSec)} tok/s, prefill ${rate(s.prefillTokPerSec)} tok/s, offload ${offload}, gpu ${gpu}, record ${record.message.recordId}`);
    });' "$1"
}

status=0
for run in 1 2 3; do
  if out="$(gbt node benchmark --gpu cuda --json)"; then
    summarize "cuda #$run" <<<"$out"
  else
    code=$?
    echo "cuda #$run: failed (exit $code)" && status=$code
  fi
done
if out="$(gbt node benchmark --gpu off --json --repetitions 2 --warmup 1 --gen-tokens 64)"; then
  summarize "off" <<<"$out"
else
  code=$?
  echo "off: failed (exit $code)" && status=$code
fi
exit "$status"
