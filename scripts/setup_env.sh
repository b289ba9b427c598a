# shellcheck shell=bash
# Source this from bash: creates or reuses the project venv from requirements.txt, builds the
# package with colcon into install/ (as on a robot), and leaves this shell with the venv active and
# install/setup.bash sourced, so `ros2 run`-style lookups (ament index) find the executables.
# Returns non-zero, with the reason, when a step fails.
#   NN1_VENV    the venv to use (default: <repo>/.venv)
#   NN1_PYTHON  the interpreter that creates it (default: python3.11 if present, else python3)
NN1_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NN1_VENV="${NN1_VENV:-$NN1_ROOT/.venv}"
if [ -z "${NN1_PYTHON:-}" ]; then
  NN1_PYTHON=$(command -v python3.11 || command -v python3)
fi

if [ ! -x "$NN1_VENV/bin/python" ]; then
  echo "[setup] creating venv $NN1_VENV with $("$NN1_PYTHON" --version)"
  "$NN1_PYTHON" -m venv "$NN1_VENV" || { echo "[setup] cannot create the venv"; return 1; }
fi
nn1_want=$(sha256sum "$NN1_ROOT/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$NN1_VENV/.nn1-requirements" 2>/dev/null)" != "$nn1_want" ]; then
  echo "[setup] installing the pinned requirements into $NN1_VENV (once)"
  "$NN1_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$NN1_ROOT/requirements.txt" || { echo "[setup] pip install failed"; return 1; }
  echo "$nn1_want" > "$NN1_VENV/.nn1-requirements"
fi

# shellcheck disable=SC1091
source "$NN1_VENV/bin/activate"
# The venv's ROS wheels are an ament prefix of their own (message packages, the rmw).
case ":${AMENT_PREFIX_PATH:-}:" in
  *":$NN1_VENV:"*) ;;
  *) export AMENT_PREFIX_PATH="$NN1_VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;;
esac

mkdir -p "$NN1_ROOT/log"
echo "[setup] colcon build -> $NN1_ROOT/install"
if ! (cd "$NN1_ROOT" && colcon --log-base log build --base-paths . --build-base build \
        --install-base install > log/colcon-build.out 2>&1); then
  cat "$NN1_ROOT/log/colcon-build.out"
  echo "[setup] colcon build failed"
  return 1
fi
# shellcheck disable=SC1091
source "$NN1_ROOT/install/setup.bash"
# The package's executables (what `ros2 run nn_one_node <name>` starts: predictor, trainer,
# assembler, nn_one_bag, status, ...) on PATH, for a venv without the ros2 CLI.
NN1_BIN="$NN1_ROOT/install/nn_one_node/lib/nn_one_node"
case ":$PATH:" in
  *":$NN1_BIN:"*) ;;
  *) export PATH="$NN1_BIN:$PATH" ;;
esac
echo "[setup] ready: the executables of nn_one_node are on PATH ($NN1_BIN)"
