#!/usr/bin/env bash
# The committed Chinese (and English zero-shot) results, experiments/results/chinese/, from one
# command:   bash experiments/chinese.sh
# It is not an ablation (one model, its evaluations), so it is a list of nlpx commands rather than
# an `nlpx ablate` spec. Each step writes runs/chinese/<step>; a step whose run.json says done is
# kept (run the script again after an interruption; an interrupted pretraining continues with
# `nlpx train resume=`), and its results are copied unedited to experiments/results/chinese/<step>/.
# CPU: about 100 minutes on a 2-core machine (30 of them the Chinese pretraining).
set -euo pipefail
cd "$(dirname "$0")/.."
D=${NLPX_DATA:-../shared/data}
RUNS=${NLPX_RUNS:-runs}
OUT=experiments/results/chinese
NLPX=${NLPX:-nlpx}
COMMON=(logger=none "runs_dir=$RUNS" experiment=chinese)

status() { python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('status'))" "$1" 2>/dev/null || true; }

step() {  # step NAME COMMAND... : run once, then copy its results
    local name=$1; shift
    local dir=$RUNS/chinese/$name
    case "$(status "$dir/run.json")" in
        done) echo "== $name: done before ($dir)" ;;
        interrupted) echo "== $name: resuming"; $NLPX train "resume=$dir" ;;
        "") echo "== $name"; $NLPX "$@" "${COMMON[@]}" "run_id=$name" ;;
        *) echo "$dir: $(status "$dir/run.json"); remove it to run the step again" >&2; exit 1 ;;
    esac
    mkdir -p "$OUT/$name"
    for f in results.md results.json results.csv summary.json metrics.jsonl overrides.yaml; do
        if [ -f "$dir/$f" ]; then cp "$dir/$f" "$OUT/$name/$f"; fi
    done
}

# 1. A tiny Chinese BERT: MLM + NSP with jieba whole-word masking on the four classics (463
#    chapters), Google's Chinese vocabulary, seq 128, batch 32, 3,000 steps (10.9 M tokens).
step pretrain_zh train model=bert model.size=tiny objective=mlm_nsp \
    objective.masking.strategy=whole_word data.word_segmenter=jieba \
    data=text "data.paths=[$D/corpus/zh/four-classics]" data.doc_split=heading \
    "data.heading='\s*(《》目录\s*)?第[0-9一二三四五六七八九十百零]+[章回]'" \
    "data.tokenizer=$D/tokenizers/bert-base-chinese" data.seq_len=128 data.batch_size=32 \
    budget.max_steps=3000 trainer.val_check_interval=500 trainer.limit_val_batches=16
ZH=$RUNS/chinese/pretrain_zh

# 2. FewCLUE (train_few_all / dev_few_all / test_public, 3 seeds) and CLUE (dev; only CLUEWSC2020
#    has a training split here): fine-tuning at learning rate 1e-3 (the top of eval.search=auto's
#    space for a 128-wide model: a search over it costs 3x, about an hour here), then both
#    zero-shot modes (no training). The model was pretrained at 128 tokens: its positions beyond
#    128 are untrained, so every input is cut there (task.max_length is 128 already).
step fewclue_finetune eval fewclue "model.pretrained=$ZH" "data.fewclue_dir=$D/fewclue" optim.lr=1e-3 \
    eval.predict_test=false
step clue_finetune eval clue "model.pretrained=$ZH" "data.clue_dir=$D/clue" optim.lr=1e-3 eval.predict_test=false
for mode in nsp mlm; do
    step fewclue_zeroshot_$mode eval fewclue "model.pretrained=$ZH" "data.fewclue_dir=$D/fewclue" \
        eval.mode=zeroshot_$mode eval.max_length=128
    step clue_zeroshot_$mode eval clue "model.pretrained=$ZH" "data.clue_dir=$D/clue" \
        eval.mode=zeroshot_$mode eval.max_length=128
done

# 3. English: a tiny BERT with MLM + NSP on the Gutenberg books (the nsp_vs_nonsp spec's full
#    pretraining), then both zero-shot modes on GLUE SST-2 and MRPC dev.
step pretrain_en train model=bert model.size=tiny objective=mlm_nsp objective.format=segment_pair_nsp \
    data=text "data.paths=[$D/corpus/gutenberg]" data.doc_split=file data.vocab_size=8000 \
    data.seq_len=128 data.batch_size=16 budget.max_steps=1500 trainer.val_check_interval=250 \
    trainer.limit_val_batches=16
for mode in nsp mlm; do
    step glue_zeroshot_$mode eval glue "model.pretrained=$RUNS/chinese/pretrain_en" "data.glue_dir=$D/glue" \
        eval.mode=zeroshot_$mode eval.max_length=128 "eval.tasks=[sst2,mrpc]"
done
