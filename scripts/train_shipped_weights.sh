#!/usr/bin/env bash
# Reproduces the weights shipped in weights/: simulated data (never test/studies, whose seed
# 900001 the simulator refuses), one pix2pix per TL modality trained in three cycles and one
# nucleus VQGAN on all modalities, each with its output calibration fitted on separate calibration
# studies, exported in fp16 with routes chosen on those studies (training.compare_routes).
# VQGANs for mitochondria, tubulin and actin start from the nucleus VQGAN's weights.
# CPU budget: about 7 hours on 2 cores (--time-limit caps each run; each run validates and
# keeps its best checkpoint). Logs: runs/<run>/train_log.csv and val_log.csv.
#   scripts/train_shipped_weights.sh [data|train-data|store|train|finetune|refine|calibrate|vqgan|vqgan-finetune|vqgan-refine|vqgan-organelles|export|routes|all]   (default: all)
#   MODS="BF PC" scripts/train_shipped_weights.sh refine    # only some modalities
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
DATA=${DATA:-data/shipped_train}
CALIB=${CALIB:-data/shipped_calibration}
STORE=${STORE:-data/shipped_train_store}   # DATA prepared for the runs (training.prepare)
MINUTES=${MINUTES:-16}
STEPS=${STEPS:-320}
FT_MINUTES=${FT_MINUTES:-17}
FT_STEPS=${FT_STEPS:-480}
R_MINUTES=${R_MINUTES:-16}
R_STEPS=${R_STEPS:-480}
VQ_MINUTES=${VQ_MINUTES:-55}
VQ_STEPS=${VQ_STEPS:-1000}
VQ_DISC_START=${VQ_DISC_START:-750}
VQ_FT_MINUTES=${VQ_FT_MINUTES:-62}
VQ_FT_STEPS=${VQ_FT_STEPS:-1000}
VQ_R_MINUTES=${VQ_R_MINUTES:-38}
VQ_R_STEPS=${VQ_R_STEPS:-600}
VQ_RUN=runs/vq_nucleus_ft3   # the nucleus VQGAN run that is calibrated, compared and transferred
VQ_T_MINUTES=${VQ_T_MINUTES:-28}     # per organelle, after transfer from the nucleus VQGAN
VQ_T_STEPS=${VQ_T_STEPS:-440}
VQ_T_DISC_START=${VQ_T_DISC_START:-250}
VQ_ORGANELLES=${VQ_ORGANELLES:-mitochondria tubulin actin}
ROUTE_ORGANELLES=${ROUTE_ORGANELLES:-nucleus $VQ_ORGANELLES}   # the routes stage compares these
FINAL=_ft3   # the cycle whose runs are calibrated and exported: runs/p2p_<modality>${FINAL}
MODS=${MODS:-BF PC DIC}   # modalities the train, finetune, refine and calibrate stages run on
stage=${1:-all}

simulate() {
  # Arguments: OUT STUDIES SEED FIRST_STUDY MODALITY FOVS_PER_STUDY. Images at most 512 px (cropped,
  # not resized), at most 11 z-slices.
  $PY -m synthetic --out "$1" --studies "$2" --seed "$3" --first-study "$4" --modalities "$5" \
    --fovs-per-study "$6" --max-size 512 --max-slices 11 --quiet
}

with_actin() {
  # Arguments: OUT FOVS_PER_STUDY BF_SEED:FIRST PC_SEED:FIRST COUNT. Actin is rare (as in the real
  # set: 27 FOVs in 3 studies) and the sampler can only balance what exists: simulate COUNT more
  # BF and PC studies each and keep only those labelled with actin.
  local out=$1 fovs=$2 count=$5 extra=${1}_extra seed first
  rm -rf "$extra"
  IFS=: read -r seed first <<< "$3"; simulate "$extra" "$count" "$seed" "$first" BF "$fovs"
  IFS=: read -r seed first <<< "$4"; simulate "$extra" "$count" "$seed" "$first" PC "$fovs"
  for study in "$extra"/Study_*; do
    if compgen -G "$study/*_Actin.ome.tiff" >/dev/null; then mv "$study" "$out/"; fi
  done
  rm -rf "$extra"
}

make_data() {
  # 24 studies per modality (study numbers 1-24 BF, 101-124 PC, 201-224 DIC), 5 FOVs each, plus
  # the actin-labelled ones among 40 more BF (301-340) and 40 more PC (401-440).
  simulate "$DATA" 24 11 1 BF 5
  simulate "$DATA" 24 12 101 PC 5
  simulate "$DATA" 24 13 201 DIC 5
  with_actin "$DATA" 5 14:301 15:401 40
}

make_calibration_data() {
  # Studies for the output calibration only (never trained on): 12 per modality (seeds 21-23,
  # studies 501-536), 4 FOVs each, plus the actin-labelled ones among 30 more BF and 30 more PC.
  rm -rf "$CALIB"
  simulate "$CALIB" 12 21 501 BF 4
  simulate "$CALIB" 12 22 513 PC 4
  simulate "$CALIB" 12 23 525 DIC 4
  with_actin "$CALIB" 4 24:601 25:631 30
}

prepare_store() {
  # DATA decoded, normalised and resampled once, at the runs' grid and focus range; every run
  # below reads its crops from it (and checks that it fits: grid, source, selection). Resumable;
  # fields whose files changed (DATA simulated again) are prepared again.
  $PY -m training.prepare --data "$DATA" --store "$STORE" --pixel-size 0.2 --max-defocus 5 --quiet
}

pix2pix() {
  # pix2pix small per modality, L1 only (the pilots: GAN off is ~35% faster and better on
  # PCC/SSIM/MAE at this budget), on a 0.2 um grid (~4-9x fewer pixels than the native 65-110 nm;
  # inference follows the spec). Arguments: MODALITY OUT STEPS MINUTES NOTE [more flags].
  local mod=$1 out=$2 steps=$3 minutes=$4 note=$5
  shift 5
  $PY -m training.train_pix2pix --data "$DATA" --store "$STORE" --out "$out" --preset small --modalities "$mod" \
    --pixel-size 0.2 --crop 128 --batch-size 8 --steps "$steps" --gan-weight 0 --max-defocus 5 \
    --val-items 16 --val-crop 256 --threads 2 --time-limit "$minutes" --quiet --note "$note" "$@"
}

note() {
  # Arguments: MODALITY MINUTES [CYCLES]: the checkpoint note of a run.
  echo "pix2pix small, L1 only, trained on CPU for at most $2 min ${3:+in $3 cycles }on simulated $1 studies (python -m synthetic, scripts/train_shipped_weights.sh); never saw real Light My Cells data"
}

train() {
  local mod
  for mod in $MODS; do
    pix2pix "$mod" "runs/p2p_${mod,,}" "$STEPS" "$MINUTES" "$(note "$mod" "$MINUTES")" \
      --lr 1e-3 --val-every 40 --ckpt-every 40
  done
}

warm_cycle() {
  # Another cycle of every modality from the best weights of runs/p2p_<mod>FROM into
  # runs/p2p_<mod>TO, at half the first cycle's lr, constant for 30% of the steps, then decaying.
  # Arguments: FROM TO STEPS MINUTES TOTAL_MINUTES CYCLES.
  local from=$1 to=$2 steps=$3 minutes=$4 total=$5 cycles=$6 mod
  for mod in $MODS; do
    pix2pix "$mod" "runs/p2p_${mod,,}$to" "$steps" "$minutes" "$(note "$mod" "$total" "$cycles")" \
      --init-from "runs/p2p_${mod,,}$from/best.pt" --lr 5e-4 --decay-start 0.3 --val-every 80 --ckpt-every 80
  done
}

finetune() {
  # Second cycle: validation PCC was still rising when the first cycle's lr reached 0.
  warm_cycle "" _ft "$FT_STEPS" "$FT_MINUTES" $((MINUTES + FT_MINUTES)) two
}

refine() {
  # Third cycle, same schedule as the second: validation PCC and MAE were still improving at its end.
  warm_cycle _ft _ft3 "$R_STEPS" "$R_MINUTES" $((MINUTES + FT_MINUTES + R_MINUTES)) three
}

vqgan() {
  # The first VQGAN small, for nucleus, on every modality (seed 000 trains one per organelle; the
  # others start from this one's weights, see vqgan_organelles). Reconstruction + codebook loss,
  # the adaptive PatchGAN term from step VQ_DISC_START; codes that fall out of use are re-seeded
  # on encoder outputs (without that the codebook collapsed to ~3 codes within 30 steps).
  vqgan_run nucleus runs/vq_nucleus "$VQ_STEPS" "$VQ_MINUTES" "$VQ_DISC_START" "$VQ_MINUTES min"
}

vqgan_run() {
  # Arguments: ORGANELLE OUT STEPS MINUTES DISC_START BUDGET_NOTE [more flags].
  local organelle=$1 out=$2 steps=$3 minutes=$4 disc=$5 budget=$6 studies="BF, PC and DIC"
  shift 6
  [[ $organelle == actin ]] && studies="BF and PC"   # no DIC study has actin
  $PY -m training.train_vqgan --data "$DATA" --store "$STORE" --out "$out" --organelle "$organelle" --preset small \
    --set reseed_threshold=0.9 --pixel-size 0.2 --crop 128 --batch-size 8 --steps "$steps" \
    --disc-start "$disc" --gan-weight 0.5 --max-defocus 5 --val-every 100 --ckpt-every 100 \
    --val-items 16 --val-crop 256 --threads 2 --time-limit "$minutes" --quiet \
    --note "VQGAN small ($organelle), trained on CPU for at most $budget on simulated $studies studies (python -m synthetic, scripts/train_shipped_weights.sh); never saw real Light My Cells data" "$@"
}

vqgan_warm_cycle() {
  # Another VQGAN cycle from the best weights of runs/vq_nucleusFROM into runs/vq_nucleusTO at lr LR,
  # constant for 30% of the steps, then decaying to 0; another seed for other crops.
  # Arguments: FROM TO STEPS MINUTES DISC_START LR SEED BUDGET_NOTE.
  vqgan_run nucleus "runs/vq_nucleus$2" "$3" "$4" "$5" "$8" --init-from "runs/vq_nucleus$1/best.pt" \
    --lr "$6" --decay-start 0.3 --seed "$7"
}

vqgan_finetune() {
  # Validation swung between 0.79 and 0.92 PCC at the first cycle's constant lr: half of it.
  vqgan_warm_cycle "" _ft "$VQ_FT_STEPS" "$VQ_FT_MINUTES" 750 1e-4 1 "$((VQ_MINUTES + VQ_FT_MINUTES)) min in two cycles"
}

vqgan_refine() {
  # The second cycle raised calibration-set PCC from 0.79 to 0.91, and validation peaked late.
  vqgan_warm_cycle _ft _ft3 "$VQ_R_STEPS" "$VQ_R_MINUTES" 450 5e-5 2 \
    "$((VQ_MINUTES + VQ_FT_MINUTES + VQ_R_MINUTES)) min in three cycles"
}

calibrate_run() {
  # Output calibration of RUN fitted on ITEMS slices of the calibration studies (never on
  # test/studies); written to RUN/calibration.json, which the export puts in the spec.
  # Arguments: RUN ITEMS.
  $PY -m training.calibrate --run "$1" --all --data "$CALIB" --items "$2" --threads 2
}

calibrate_vqgan() {
  calibrate_run "$VQ_RUN" 80
}

vq_run() {
  # The run of ORGANELLE's VQGAN that is calibrated, compared and exported.
  if [[ $1 == nucleus ]]; then echo "$VQ_RUN"; else echo "runs/vq_$1"; fi
}

vqgan_organelles() {
  # One VQGAN small per other organelle, transferred from the nucleus VQGAN's best weights: its
  # encoder already reads BF, PC and DIC and its codebook is in use, so a from-scratch first cycle
  # (55 min for nucleus, still behind pix2pix) is skipped; lr 1e-4 as in the nucleus's second
  # cycle, constant for 30% of the steps, then decaying; the PatchGAN term from VQ_T_DISC_START.
  # Each run gets its output calibration on the calibration studies.
  local organelle run
  for organelle in $VQ_ORGANELLES; do
    run=$(vq_run "$organelle")
    vqgan_run "$organelle" "$run" "$VQ_T_STEPS" "$VQ_T_MINUTES" "$VQ_T_DISC_START" \
      "$VQ_T_MINUTES min after transfer from the nucleus VQGAN ($((VQ_MINUTES + VQ_FT_MINUTES + VQ_R_MINUTES)) min)" \
      --init-from "$VQ_RUN/best.pt" --lr 1e-4 --decay-start 0.3 --seed 3
    calibrate_run "$run" 48
  done
}

calibrate() {
  # Per-organelle output calibration of each modality's final pix2pix run.
  local mod
  for mod in $MODS; do
    calibrate_run "runs/p2p_${mod,,}${FINAL}" 80
  done
}

export_weights() {
  rm -f weights/manifest.json weights/*.pt
  $PY -m training.export --run runs/p2p_bf$FINAL --name p2p_bf_small --weights weights --route 'BF:*' --window 256 --half
  $PY -m training.export --run runs/p2p_pc$FINAL --name p2p_pc_small --weights weights \
    --route 'PC:mitochondria,PC:tubulin,PC:actin' --window 256 --half
  # No DIC study has actin (as in the real set): DIC actin goes to the PC model's actin decoder.
  $PY -m training.export --run runs/p2p_dic$FINAL --name p2p_dic_small --weights weights \
    --route 'DIC:mitochondria,DIC:tubulin' --window 256 --half
  $PY -m training.export --run runs/p2p_pc$FINAL --name p2p_pc_small --weights weights --route 'DIC:actin' --window 256 --half
  # The VQGAN routes: where it alone beat the pix2pix and the average of both on the calibration
  # studies (the routes stage, 2026-11-22). Nucleus: PC and DIC (BF stayed on pix2pix). Tubulin:
  # BF and DIC (PC stayed). Actin: BF only; PC stayed on pix2pix, so DIC actin, which nothing can
  # be scored on, stays on the PC model. Mitochondria: pix2pix won everywhere; its VQGAN
  # (runs/vq_mitochondria) is not shipped.
  $PY -m training.export --run "$(vq_run nucleus)" --name vq_nucleus_small --weights weights \
    --route 'PC:nucleus,DIC:nucleus' --window 256 --half
  $PY -m training.export --run "$(vq_run tubulin)" --name vq_tubulin_small --weights weights \
    --route 'BF:tubulin,DIC:tubulin' --window 256 --half
  $PY -m training.export --run "$(vq_run actin)" --name vq_actin_small --weights weights \
    --route 'BF:actin' --window 256 --half
}

compare_routes() {
  # Which route ships for each organelle of ROUTE_ORGANELLES: each modality's pix2pix, the
  # organelle's VQGAN, or their average, scored on 24 slices per modality of the calibration
  # studies (the VQGAN goes into a scratch copy of weights/; each pix2pix stays there through its
  # routes for the other organelles). No DIC study has actin, so DIC actin cannot be compared.
  # Tables: runs/routes_<organelle>_<modality>.json.
  local scratch=runs/route_candidates organelle run vq mod
  for organelle in $ROUTE_ORGANELLES; do
    run=$(vq_run "$organelle")
    vq=vq_${organelle}_small
    rm -rf "$scratch"
    cp -r weights "$scratch"
    $PY -m training.export --run "$run" --name "$vq" --weights "$scratch" \
      --route "*:$organelle" --window 256 --half
    for mod in $MODS; do
      [[ $organelle == actin && $mod == DIC ]] && continue
      $PY -m training.compare_routes --weights "$scratch" --data "$CALIB" --modality "$mod" \
        --organelle "$organelle" --candidate "p2p_${mod,,}_small" --candidate "$vq" \
        --candidate "p2p_${mod,,}_small+$vq" --items 24 --threads 2 \
        --json "runs/routes_${organelle}_${mod,,}.json"
    done
  done
}

case "$stage" in
  data) make_data; make_calibration_data; prepare_store ;;
  train-data) make_data; prepare_store ;;
  store) prepare_store ;;
  train) train ;;
  finetune) finetune ;;
  refine) refine ;;
  vqgan) vqgan ;;
  vqgan-finetune) vqgan_finetune ;;
  vqgan-refine) vqgan_refine; calibrate_vqgan ;;
  vqgan-organelles) vqgan_organelles ;;
  calibrate) calibrate ;;
  export) export_weights ;;
  routes) compare_routes ;;
  all) make_data; make_calibration_data; prepare_store; train; finetune; refine; calibrate; vqgan; vqgan_finetune; vqgan_refine; calibrate_vqgan; vqgan_organelles; export_weights; compare_routes ;;
  *) echo "usage: $0 [data|train-data|store|train|finetune|refine|calibrate|vqgan|vqgan-finetune|vqgan-refine|vqgan-organelles|export|routes|all]" >&2; exit 2 ;;
esac
