#!/bin/sh
# Build the standard interface packages the ROS 2 PyPI wheels lack (tf2_msgs, nav2_msgs,
# control_msgs) from interfaces/<name>, but only where the real package cannot be imported.
# A package built here before is rebuilt incrementally; a real one (an apt ROS install) is left
# alone. Usage: interfaces/build.sh PYTHON PREFIX BUILD_DIR [EXTRA CMAKE ARGS...]
set -eu
python=$1; prefix=$2; build=$3; shift 3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$build"
for name in tf2_msgs nav2_msgs control_msgs; do
  dir="$build/$name"
  if [ ! -f "$dir/Makefile" ]; then
    if "$python" -c "import $name" 2>/dev/null; then
      echo "interfaces: $name is installed; using it"
      continue
    fi
    echo "interfaces: $name is not importable; building it from interfaces/$name"
    cmake -S "$here/$name" -B "$dir" -DCMAKE_INSTALL_PREFIX="$prefix" \
      -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$python" -DBUILD_TESTING=OFF "$@" \
      > "$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
  fi
  cmake --build "$dir" -j2 > "$dir.build.log" 2>&1 || { cat "$dir.build.log"; exit 1; }
  cmake --install "$dir" > "$dir.install.log" 2>&1 || { cat "$dir.install.log"; exit 1; }
done
