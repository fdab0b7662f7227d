#!/usr/bin/env bash
# The evaluations a shipped model carries (docs/training.md), one after the other:
#   scripts/evaluate_model.sh MODEL_DIR [EPISODES]
# writes MODEL_DIR/eval-*/ (eval.json, eval.md, eval.png each).
set -euo pipefail
model=$1
episodes=${2:-50}
leo_eval() { leo-eval --model "$model" --quiet "$@"; }
for seed in 0 1 2; do
  leo_eval --seed "$seed" --episodes "$episodes" --out "$model/eval-seed$seed"
done
# wordings the training templates do not have
leo_eval --seed 0 --episodes "$episodes" --phrasings config/phrasings_heldout.yaml \
  --out "$model/eval-heldout-seed0"
# words the training data never uses (synonyms, descriptions, verbs): 15 per family
leo_eval --seed 0 --episodes 15 --phrasings config/open_vocabulary_phrasings.yaml \
  --lexicon config/open_vocabulary.yaml --families nav pick_place plan qa object_caption \
  --out "$model/eval-open-vocabulary"
# instructions that name what is not there (nouns training never saw)
leo_eval --seed 0 --episodes 100 --families refusal --out "$model/eval-refusal"
# through perception, with held-out wordings, at a seed no other evaluation uses
leo_eval --seed 3 --episodes "$episodes" --tokens perception \
  --phrasings config/phrasings_heldout.yaml --families nav pick_place plan qa \
  --out "$model/eval-perception-heldout-seed3"
# through perception with the training wordings, beside the world-token runs of seed 0
leo_eval --seed 0 --episodes "$episodes" --tokens perception --families nav pick_place qa \
  --out "$model/eval-perception-seed0"
# questions about the labelled real scans (mOSD), when they are there
real=../shared/data/mosd-learn
if [ -d "$real" ]; then
  leo_eval --real "$real" --out "$model/eval-real-mosd-learn"
fi
