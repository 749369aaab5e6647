#!/usr/bin/env bash
# Nightly pricelab batch: ingest -> validate -> estimate -> optimize -> [report] -> monitor.
#
# Stops at the first failing step and exits with that step's code (the pricelab contract):
#   0 all clear; 1 a check failed (validation errors, infeasible plan, monitoring alert);
#   2 bad usage or unreadable/invalid input; 3 internal error (rerun the step with --debug);
#   75 storage temporarily unavailable (retry later: cron wrappers and schedulers should).
#
# Settings (environment):
#   DATA_DIR     folder with sales.csv and optionally items.csv, costs.csv, markets.csv,
#                inventory.csv (CSV or .parquet)                                 [required]
#   PRICELAB_DB  the DuckDB file                                   [./pricelab.duckdb]
#   PRICELAB     how to call pricelab, e.g. "python -m pricelab"            [pricelab]
#   MODEL        estimate --model                                       [hierarchical]
#   CONSTRAINTS  optimize --constraints YAML                                  [none]
#   MONITOR_CONFIG  monitor --config YAML (thresholds)                        [none]
#   AS_OF        monitor --as-of date                                        [today]
#   REPORT       write the HTML report here before monitoring               [none]
set -euo pipefail

log() { printf '[%s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

if [[ -z ${DATA_DIR:-} || ! -d ${DATA_DIR} ]]; then
    log "FAILED setup: set DATA_DIR to the folder holding sales.csv (got '${DATA_DIR:-}')"
    exit 2
fi
export PRICELAB_DB="${PRICELAB_DB:-./pricelab.duckdb}"
read -r -a PRICELAB_CMD <<< "${PRICELAB:-pricelab}"
MODEL="${MODEL:-hierarchical}"

# step NAME ARGS...: run one pricelab command; on failure say which step and exit with its code.
step() {
    local name=$1 rc=0
    shift
    log "start ${name}"
    "${PRICELAB_CMD[@]}" "$@" || rc=$?
    if [[ ${rc} -ne 0 ]]; then
        log "FAILED ${name} (exit ${rc}); later steps not run"
        exit "${rc}"
    fi
    log "done ${name}"
}

find_input() {  # the first of NAME.csv / NAME.parquet in DATA_DIR
    local f
    for f in "${DATA_DIR}/$1.csv" "${DATA_DIR}/$1.parquet"; do
        if [[ -f ${f} ]]; then printf '%s' "${f}"; return 0; fi
    done
    return 1
}

sales=$(find_input sales) || { log "FAILED ingest: no sales.csv or sales.parquet in ${DATA_DIR}"; exit 2; }
ingest_args=(--sales "${sales}" --replace)
for kind in items costs markets inventory; do
    if f=$(find_input "${kind}"); then ingest_args+=("--${kind}" "${f}"); fi
done

step ingest ingest "${ingest_args[@]}"
step validate validate
step estimate estimate --model "${MODEL}"
optimize_args=()
if [[ -n ${CONSTRAINTS:-} ]]; then optimize_args+=(--constraints "${CONSTRAINTS}"); fi
step optimize optimize "${optimize_args[@]}"
if [[ -n ${REPORT:-} ]]; then step report report --output "${REPORT}"; fi
monitor_args=()
if [[ -n ${MONITOR_CONFIG:-} ]]; then monitor_args+=(--config "${MONITOR_CONFIG}"); fi
if [[ -n ${AS_OF:-} ]]; then monitor_args+=(--as-of "${AS_OF}"); fi
step monitor monitor "${monitor_args[@]}"
log "nightly run complete"
