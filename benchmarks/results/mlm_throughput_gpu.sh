# The GPU rows of docs/benchmarks.md as run on a lent H200 (2026-11-30), from the repo root there.
# .whl held the pure-Python wheels the device image lacks (hydra-core, omegaconf, antlr4-python3-runtime,
# hydra-joblib-launcher); .devdata a copy of ../shared/data's corpus/ and glue/ folders (the device sees
# only the repository); $OUT the folder whose files came back.
set -x
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit 1
export NLPX_DATA=$PWD/.devdata PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
python3 -c "import torch, transformers, lightning; print(torch.__version__, transformers.__version__, lightning.__version__)"
B="python3 benchmarks/mlm_throughput.py --accelerator gpu --size base --precision bf16-mixed --batch-size 256 --max-stall -1 --max-extra-pairs 0"
timeout 200 $B --repeats 2 --steps 60 --warmup-steps 20 --out $OUT/mlm_throughput_gpu.json 2>&1 | tee $OUT/eager.log
timeout 300 $B --compile --repeats 1 --steps 80 --warmup-steps 40 --out $OUT/mlm_throughput_gpu_compile.json 2>&1 | tee $OUT/compile.log
