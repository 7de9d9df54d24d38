# The probe as run on the lent H200 after mlm_throughput_gpu.sh (same .whl / .devdata / $OUT; see there);
# spec.yaml here was .devdata/nsp_gpu.yaml.
export PYTHONPATH=/tmp/site:$PWD NLPX_DATA=$PWD/.devdata PYTHONUNBUFFERED=1
[ -d /tmp/site/hydra ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
timeout ${T:-420} python3 -m nlpx.cli ablate .devdata/nsp_gpu.yaml --size full runs_dir=/tmp/abl hydra/launcher=joblib hydra.launcher.n_jobs=4 2>&1 | tee $OUT/probe.log | tail -60
python3 -m nlpx.cli ablate .devdata/nsp_gpu.yaml --report runs_dir=/tmp/abl 2>&1 | tail -40
cp /tmp/abl/results.md /tmp/abl/results.json $OUT/ 2>/dev/null
tar czf $OUT/cells.tgz --exclude='*.ckpt' --exclude='*.safetensors' --exclude='*.bin' -C /tmp abl 2>/dev/null; ls -la $OUT
