#!/usr/bin/env bash
# The runs behind docs/results.md (issue "Reproduce the papers"): every configuration, seeds 1-3, into
# out/repro/NAME_sSEED, then the plots and tables (aware report). Resumable: a finished run (its
# summary.json exists) is skipped, an interrupted one continues from its checkpoints.
#
# Usage: scripts/reproduce.sh [GROUP...]   (default: all groups, kinematics loo fashion lambda saturation
#                                            three ratio epochs)
#   prior       configs/paper.toml's prior run alone (prior_sSEED): every jet AA run below starts from it
#   paper       configs/paper.toml's AA run (aware of w, r2, r3, r4; eft unseen)
#   loo         paper, and each jet anomaly left out in turn (aware of the four others)
#   lambda      lambda 0.3 and 0.8 (Appendix A; 0.5 is loo's eft run)
#   saturation  aware of {w}, {w, r4}, {w, r3, r4}, eft unseen (with paper: 1 to 4 types; Figs. 6-7)
#   three       three normal classes, configs/three_class.toml (Figs. 8-9)
#   kinematics  Appendix B, configs/kinematics_paper.toml, each anomaly left out in turn
#   fashion     Appendix C, configs/fashion.toml (data/fashion from Debian's dataset-fashion-mnist)
#   ratio       anomalies per normal event 0.5 and 2
#   epochs      20 + 20 epochs, and 10 + 10 from prior_sSEED beside them
#   lee         paper with the look-elsewhere effect: 10^4 background-only toys per class and stage at
#               3000 fb^-1, the scanned windows and the window 0.3 < P < 0.7 fixed in advance (lee_sSEED)
# Environment: SEEDS (default "1 2 3"), OUT (default out/repro), RECORDS (the finished runs' records, from
# which `aware report docs/runs/repro -o docs/results` redraws the tables and density plots; default
# docs/runs/repro with the default OUT, else OUT/records), THREADS (default: all cores), AWARE (the
# program; default build/aware, built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-"1 2 3"}
RECORDS=${RECORDS:-$([[ -z ${OUT:-} ]] && echo docs/runs/repro || echo "${OUT}/records")}  # the repo's only for out/repro
OUT=${OUT:-out/repro}
AWARE=${AWARE:-build/aware}
[[ -x $AWARE ]] || scripts/build.sh
threads=(); [[ -n ${THREADS:-} ]] && threads=(--threads "$THREADS")

# run NAME SEED CONFIG [aware run options...]; a finished run's record (its config, summary and log:
# every number and histogram the report needs, 30 kB; and its look-elsewhere reports) is copied to RECORDS.
run() {
  local name=$1 seed=$2 config=$3; shift 3
  local dir=$OUT/${name}_s$seed
  if [[ ! -f $dir/summary.json ]]; then
    local resume=(); [[ -d $dir ]] && resume=(--resume)
    echo "== $(date +%H:%M:%S) $name seed $seed"
    "$AWARE" run "$config" --seed "$seed" -o "$dir" -q "${threads[@]}" "${resume[@]}" "$@" > "$OUT/${name}_s$seed.txt"
  fi
  mkdir -p "$RECORDS/${name}_s$seed"
  cp "$dir/config.toml" "$dir/summary.json" "$dir/log.jsonl" "$RECORDS/${name}_s$seed/"
  # The look-elsewhere reports (runs with [scan] toys), 40 kB a class and stage.
  if compgen -G "$dir/analysis/*_lee.json" > /dev/null; then cp "$dir"/analysis/*_lee.json "$RECORDS/${name}_s$seed/"; fi
}
list() { local IFS=,; local s="$*"; echo "[\"${s//,/\",\"}\"]"; }  # list a b -> ["a","b"] (TOML)
jet_prior() { echo "--prior=$OUT/prior_s$1/prior.ckpt"; }  # group_prior runs them
ANOMALIES=(w r2 r3 r4 eft)

group_prior() { for seed in $SEEDS; do run prior "$seed" configs/paper.toml --set train.aa_epochs=0; done; }
group_paper() { group_prior; for seed in $SEEDS; do run paper "$seed" configs/paper.toml "$(jet_prior "$seed")"; done; }

group_loo() {
  group_paper
  for left in w r2 r3 r4; do
    local aware=()
    for a in "${ANOMALIES[@]}"; do [[ $a != "$left" ]] && aware+=("$a"); done
    for seed in $SEEDS; do
      run "loo_$left" "$seed" configs/paper.toml "$(jet_prior "$seed")" \
        --set "data.aware=$(list "${aware[@]}")" --set "data.unseen=$(list "$left")"
    done
  done
}

group_lambda() {
  group_prior
  for lambda in 0.3 0.8; do
    for seed in $SEEDS; do run "lambda_$lambda" "$seed" configs/paper.toml "$(jet_prior "$seed")" --set "train.lambda=$lambda"; done
  done
}

group_saturation() {
  group_prior
  local sets=("w" "w r4" "w r3 r4")
  for set in "${sets[@]}"; do
    local aware=($set) unseen=()
    for a in "${ANOMALIES[@]}"; do [[ " $set " != *" $a "* ]] && unseen+=("$a"); done
    local name="aware_${set// /_}"
    for seed in $SEEDS; do
      run "$name" "$seed" configs/paper.toml "$(jet_prior "$seed")" --set "data.n_aware=7500" \
        --set "data.aware=$(list "${aware[@]}")" --set "data.unseen=$(list "${unseen[@]}")"
    done
  done
}

group_three() { for seed in $SEEDS; do run three "$seed" configs/three_class.toml; done; }

group_kinematics() {
  for seed in $SEEDS; do run kin "$seed" configs/kinematics_paper.toml; done
  local all=(zh wh graviton)
  for left in zh wh; do
    local aware=()
    for a in "${all[@]}"; do [[ $a != "$left" ]] && aware+=("$a"); done
    for seed in $SEEDS; do
      run "kin_loo_$left" "$seed" configs/kinematics_paper.toml "--prior=$OUT/kin_s$seed/prior.ckpt" \
        --set "data.aware=$(list "${aware[@]}")" --set "data.unseen=$(list "$left")"
    done
  done
}

group_fashion() {
  scripts/setup.sh fashion
  /usr/bin/python3 scripts/make_fashion.py data/fashion
  for seed in $SEEDS; do run fashion "$seed" configs/fashion.toml; done
}

group_ratio() {
  group_prior
  for ratio in 0.5 2; do
    for seed in $SEEDS; do run "ratio_$ratio" "$seed" configs/paper.toml "$(jet_prior "$seed")" --set "train.ratio=$ratio"; done
  done
}

group_lee() {
  group_prior
  for seed in $SEEDS; do
    run lee "$seed" configs/paper.toml "$(jet_prior "$seed")" --set scan.toys=10000 --set "scan.fixed_window=[0.3, 0.7]"
  done
}

# 20 + 20 epochs, prior and AA, against 10 + 10 on the same machine: the paper configuration's AA run
# from prior_sSEED (epochs10; paper_sSEED may come from another machine, see docs/results.md).
group_epochs() {
  group_prior
  for seed in $SEEDS; do
    run epochs10 "$seed" configs/paper.toml "$(jet_prior "$seed")"
    run epochs20 "$seed" configs/paper.toml --set train.epochs=20 --set train.aa_epochs=20
  done
}

mkdir -p "$OUT"
groups=("$@")
[[ ${#groups[@]} -eq 0 ]] && groups=(kinematics loo fashion lambda saturation three ratio epochs)
for g in "${groups[@]}"; do
  declare -F "group_$g" > /dev/null || { echo "reproduce.sh: unknown group '$g' (see the header)" >&2; exit 2; }
  "group_$g"
done
echo "== $(date +%H:%M:%S) all runs done; plots and tables: $AWARE report $RECORDS $OUT -o docs/results"
