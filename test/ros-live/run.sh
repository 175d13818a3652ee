#!/usr/bin/env bash
# npm run test:ros: the end-to-end check of the ROS 2 layer, for a machine where ROS 2 (Humble or
# Jazzy) is sourced. It needs nothing but that and this repository:
#   1. colcon-builds msgs/upload_agent_msgs and launch/upload_agent_bringup into a temporary
#      overlay, sources it, and runs `npm run ros:setup` (installs rclnodejs if needed, generates
#      its messages, checks them); checks that bad launch arguments stop the launch clearly;
#   2. starts the bundled server (dist/server/cli/main.js) on 127.0.0.1;
#   3. runs `ros2 launch upload_agent_bringup record_and_upload.launch.xml` against a small
#      publisher with 3 s splits;
#   4. checks /upload_status, ~/queue and /diagnostics, that every closed split arrives on the
#      server byte-identical while recording goes on, that launch-file parameters arrive, that
#      `ros2 param set bandwidth_limit` takes effect and a refused value keeps the old one (read
#      back: `ros2 param set` exits 0 either way), that ~/pause, ~/resume and ~/enqueue work, and
#      that on SIGINT the agent drains (the last split and metadata.yaml the recorder writes while
#      stopping reach the server) and exits cleanly.
# DDS stays on this machine (ROS_LOCALHOST_ONLY=1 / ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) on a
# domain id of its own. Set KEEP=1 to keep the work folder (logs, bags, server storage);
# TEST_ROS_NAMESPACE=robot1 runs the node in a namespace; TEST_ROS_CMAKE_ARGS passes CMake
# arguments to colcon (e.g. -DPython3_EXECUTABLE=/usr/bin/python3 where pyenv shadows it).
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NS="${TEST_ROS_NAMESPACE:-}"
NODE_FQN="${NS:+/${NS#/}}/upload_agent"
TOPIC_PREFIX="${NS:+/${NS#/}}"
SPLIT_SECONDS=3
PASSED=0

say() { printf '\033[1mtest:ros:\033[0m %s\n' "$*"; }
pass() { PASSED=$((PASSED + 1)); printf '  \033[32mok\033[0m   %s\n' "$*"; }
fail() {
  printf '  \033[31mFAIL\033[0m %s\n' "$*" >&2
  if [[ -n "${WORK:-}" ]]; then
    for log in launch server publisher; do
      [[ -f "$WORK/$log.log" ]] && { printf -- '--- last lines of %s.log ---\n' "$log" >&2; tail -n 40 "$WORK/$log.log" | cut -c1-400 >&2; }
    done
  fi
  exit 1
}

# ---- What this needs -------------------------------------------------------------------------
missing=()
[[ -n "${ROS_DISTRO:-}" && -n "${AMENT_PREFIX_PATH:-}" ]] || missing+=("ROS 2 sourced (source /opt/ros/humble/setup.bash or /opt/ros/jazzy/setup.bash)")
command -v ros2 >/dev/null 2>&1 || missing+=("the ros2 command (ros-\$ROS_DISTRO-ros-base)")
command -v colcon >/dev/null 2>&1 || missing+=("colcon (sudo apt install python3-colcon-common-extensions)")
command -v node >/dev/null 2>&1 || missing+=("Node.js >= 20.20.2")
command -v timeout >/dev/null 2>&1 || missing+=("timeout (coreutils)")
if ((${#missing[@]} > 0)); then
  {
    echo "test:ros needs a machine where ROS 2 (Humble or Jazzy) is sourced; it cannot run here. Missing:"
    printf '  - %s\n' "${missing[@]}"
    echo "Then run \`npm run test:ros\` again (the rest of the tests run with \`npm test\`, without ROS)."
  } >&2
  exit 2
fi
node -e 'const [a,b,c]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&(b>20||(b===20&&c>=2)))?0:1)' ||
  { echo "test:ros: rclnodejs 2 needs Node.js >= 20.20.2; this is $(node --version)" >&2; exit 2; }
case "$ROS_DISTRO" in humble|jazzy) ;; *) say "warning: tested on Humble and Jazzy; this is $ROS_DISTRO" ;; esac

# ---- A sandbox: temp folder, own DDS domain, loopback only, everything killed at the end -------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ros2-upload-agent-test-ros.XXXXXX")"
export ROS_DOMAIN_ID="${TEST_ROS_DOMAIN_ID:-$(( ($$ % 100) + 101 ))}"
if [[ "$ROS_DISTRO" == humble ]]; then export ROS_LOCALHOST_ONLY=1; else export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST; unset ROS_LOCALHOST_ONLY; fi
export RCUTILS_COLORIZED_OUTPUT=0
PIDS=()
# Background commands start after `set -m`, so each leads its own process group: signalling the
# group (-pid) also reaches what it started (ros2 launch's recorder and node), never anything else.
signal_group() { kill "-$1" -- "-$2" 2>/dev/null || kill "-$1" "$2" 2>/dev/null || true; }
cleanup() {
  local code=$?
  for pid in "${PIDS[@]}"; do signal_group INT "$pid"; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    signal_group KILL "$pid"
  done
  ros2 daemon stop >/dev/null 2>&1 || true
  if [[ "${KEEP:-0}" == 1 || $code -ne 0 ]]; then say "work folder kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say "ROS 2 $ROS_DISTRO, domain $ROS_DOMAIN_ID, work folder $WORK"
ros2 daemon stop >/dev/null 2>&1 || true

# Polls `$@` until it succeeds, for at most $DEADLINE seconds.
wait_for() {
  local what="$1" limit="$2"; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "$what (waited $limit s)"
    sleep 1
  done
}

# ---- 1. Build the interface and launch packages into an overlay; rclnodejs and its messages ---
say "building msgs/upload_agent_msgs and launch/upload_agent_bringup with colcon"
for package in "$ROOT/msgs/upload_agent_msgs" "$ROOT/launch/upload_agent_bringup"; do
  [[ -f "$package/package.xml" ]] || fail "$package/package.xml is missing"
done
(cd "$WORK" && colcon --log-base "$WORK/colcon-log" build --base-paths "$ROOT/msgs/upload_agent_msgs" "$ROOT/launch/upload_agent_bringup" \
  --build-base "$WORK/build" --install-base "$WORK/install" ${TEST_ROS_CMAKE_ARGS:+--cmake-args $TEST_ROS_CMAKE_ARGS} >"$WORK/colcon.log" 2>&1) || { tail -n 60 "$WORK/colcon.log" >&2; fail "colcon build failed (see above)"; }
set +u
# shellcheck disable=SC1091
source "$WORK/install/setup.bash"
set -u
ros2 pkg prefix upload_agent_msgs >/dev/null && ros2 pkg prefix upload_agent_bringup >/dev/null || fail "the overlay does not provide upload_agent_msgs and upload_agent_bringup"
[[ -x "$WORK/install/upload_agent_bringup/lib/upload_agent_bringup/upload_agent" ]] || fail "lib/upload_agent_bringup/upload_agent was not installed"
pass "colcon built upload_agent_msgs and upload_agent_bringup (with lib/upload_agent_bringup/upload_agent)"

cd "$ROOT"
[[ -f "$ROOT/dist/agent/cli/main.js" && -f "$ROOT/dist/server/cli/main.js" ]] || npm run build >"$WORK/build.log" 2>&1 || fail "npm run build failed"
# The documented install step itself: installs rclnodejs if needed (npm 10 and 11), builds it for
# this ROS 2, generates the messages of the overlay and checks every type the node uses.
say "npm run ros:setup (rclnodejs, its messages, the check)"
npm run -s ros:setup >"$WORK/ros-setup.log" 2>&1 || { tail -n 40 "$WORK/ros-setup.log" >&2; fail "npm run ros:setup failed (see above)"; }
git -C "$ROOT" diff --quiet -- package.json package-lock.json 2>/dev/null || fail "npm run ros:setup changed package.json or package-lock.json"
node --input-type=module -e "
  const rcl = (await import('rclnodejs')).default;
  for (const t of ['upload_agent_msgs/msg/UploadStatus', 'upload_agent_msgs/msg/UploadQueue', 'upload_agent_msgs/srv/Enqueue',
                   'std_srvs/srv/Trigger', 'diagnostic_msgs/msg/DiagnosticArray', 'rosbag2_interfaces/msg/WriteSplitEvent']) rcl.require(t);
  process.exit(0);" >"$WORK/require.log" 2>&1 || { cat "$WORK/require.log" >&2; fail "rclnodejs does not know the interface types after npm run ros:setup"; }
pass "npm run ros:setup: rclnodejs loads and knows upload_agent_msgs, std_srvs, diagnostic_msgs and rosbag2_interfaces (package.json and the lock untouched)"

# Launch arguments are checked before anything starts: a message naming the argument, no traceback.
out="$(timeout 60 ros2 launch upload_agent_bringup record_and_upload.launch.xml bag_dir:=' ' server_url:=http://127.0.0.1:1 2>&1)" && fail "an empty bag_dir was accepted"
grep -q 'bag_dir is empty: give the folder to record into and upload from, e.g. bag_dir:=/data/bags' <<<"$out" && ! grep -q 'Traceback' <<<"$out" ||
  fail "an empty bag_dir did not stop the launch with a clear message: $out"
out="$(timeout 60 ros2 launch upload_agent_bringup record_and_upload.launch.py bag_dir:="$WORK/args" server_url:=uploads.example.com 2>&1)" && fail "a server_url without http(s):// was accepted"
grep -q 'server_url:=uploads.example.com must start with http:// or https://' <<<"$out" && ! grep -q 'Traceback' <<<"$out" ||
  fail "a wrong server_url did not stop the launch with a clear message: $out"
pass "launch arguments are checked up front (XML and Python): an empty bag_dir, a server_url without a scheme"

# Job control: without it, bash starts background commands with SIGINT ignored, and `ros2 launch`
# (and its nodes) would never see the SIGINT this script sends at the end.
set -m

# ---- 2. The bundled server on 127.0.0.1 --------------------------------------------------------
PORT="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
SERVER_URL="http://127.0.0.1:$PORT"
node "$ROOT/dist/server/cli/main.js" --host 127.0.0.1 --port "$PORT" --upload-dir "$WORK/server" >"$WORK/server.log" 2>&1 &
PIDS+=($!)
health() { node -e "fetch('$SERVER_URL/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"; }
wait_for "the server answers /health" 30 health
pass "server listening on $SERVER_URL"

# ---- 3. A publisher, and ros2 launch record_and_upload.launch.xml ------------------------------
TOPIC=/ros2_upload_agent_test
PAYLOAD="$(head -c 2000 /dev/zero | tr '\0' 'x')"
ros2 topic pub -r 50 "$TOPIC" std_msgs/msg/String "{data: '$PAYLOAD'}" >/dev/null 2>"$WORK/publisher.log" &
PIDS+=($!)

BAG_DIR="$WORK/bags"
mkdir -p "$BAG_DIR" "$WORK/state"
# Settings given by the launch file's params_file (keyed /**, as <param from=...> passes it).
cat >"$WORK/params.yaml" <<EOF
/**:
  ros__parameters:
    state_dir: "$WORK/state"
    max_retries: 7
    settle_time: 5.0
    quiet_period: 0.5
    min_free_space: 0
EOF
LAUNCH_BANDWIDTH=3000000
say "ros2 launch upload_agent_bringup record_and_upload.launch.xml (splits every $SPLIT_SECONDS s)"
# (ros2 launch refuses an empty `namespace:=`, so it is only given when set.)
ros2 launch upload_agent_bringup record_and_upload.launch.xml \
  bag_dir:="$BAG_DIR" server_url:="$SERVER_URL" topics:="$TOPIC" max_bag_duration:="$SPLIT_SECONDS" \
  bandwidth_limit:="$LAUNCH_BANDWIDTH" ${NS:+namespace:="$NS"} params_file:="$WORK/params.yaml" >"$WORK/launch.log" 2>&1 &
LAUNCH_PID=$!
PIDS+=("$LAUNCH_PID")

node_up() { ros2 node list 2>/dev/null | grep -qx "$NODE_FQN"; }
wait_for "the node $NODE_FQN appears" 90 node_up
pass "node $NODE_FQN is up"

# ---- 4. Checks -----------------------------------------------------------------------------------
echo_once() { timeout "$2" ros2 topic echo --once "${@:3}" "$1" 2>/dev/null; }

queue="$(echo_once "$NODE_FQN/queue" 60 --qos-durability transient_local --qos-reliability reliable)" || fail "ros2 topic echo --once $NODE_FQN/queue printed nothing (transient local should answer at once)"
grep -q '^online: true' <<<"$queue" || fail "$NODE_FQN/queue does not say online: true:
$queue"
pass "ros2 topic echo --once $NODE_FQN/queue shows the agent at once (online: true)"

# stdout only: DDS implementations may print notices on stderr (Cyclone: "lo is not multicast-capable").
get_param() { ros2 param get "$NODE_FQN" "$1" 2>/dev/null; }
value="$(get_param bandwidth_limit)"
[[ "$value" == "Integer value is: $LAUNCH_BANDWIDTH" ]] || fail "bandwidth_limit from the launch file did not arrive: $value"
value="$(get_param server_url)"
[[ "$value" == "String value is: $SERVER_URL" ]] || fail "server_url from the launch file did not arrive: $value"
value="$(get_param max_retries)"
[[ "$value" == "Integer value is: 7" ]] || fail "max_retries from the launch file's params_file did not arrive: $value"
value="$(get_param state_dir)"
[[ "$value" == "String value is: $WORK/state" ]] || fail "state_dir from the launch file's params_file did not arrive: $value"
pass "launch-file parameters arrived (bandwidth_limit, server_url keyed by the node's full name; max_retries, state_dir from /**)"

status="$(echo_once "$TOPIC_PREFIX/upload_status" 90)" || fail "ros2 topic echo --once $TOPIC_PREFIX/upload_status printed nothing in 90 s"
grep -q '^upload_id: ' <<<"$status" && grep -q '^state: ' <<<"$status" && grep -q "^local_path: '\?$BAG_DIR" <<<"$status" ||
  fail "$TOPIC_PREFIX/upload_status does not look like an UploadStatus of a file in $BAG_DIR:
$status"
pass "ros2 topic echo --once $TOPIC_PREFIX/upload_status shows the agent's status"

diagnostics="$(echo_once /diagnostics 60)" || fail "/diagnostics printed nothing in 60 s"
# ros2 topic echo quotes the name (it contains ': ').
grep -qE "name: '?${NODE_FQN#/}: uploads'?$" <<<"$diagnostics" || fail "/diagnostics has no status named ${NODE_FQN#/}: uploads:
$diagnostics"
pass "/diagnostics carries the agent's status"

out="$(ros2 param set "$NODE_FQN" bandwidth_limit 1000000 2>&1)" || true
grep -q 'Set parameter successful' <<<"$out" || fail "ros2 param set bandwidth_limit 1000000: $out"
[[ "$(get_param bandwidth_limit)" == "Integer value is: 1000000" ]] || fail "bandwidth_limit did not read back as 1000000"
limit_in_queue() { echo_once "$NODE_FQN/queue" 30 --qos-durability transient_local --qos-reliability reliable | grep -q '^bandwidth_limit: 1000000$'; }
wait_for "~/queue shows bandwidth_limit: 1000000" 90 limit_in_queue
pass "ros2 param set bandwidth_limit 1000000 took effect (read back, and on ~/queue)"

out="$(ros2 param set "$NODE_FQN" bandwidth_limit -5 2>&1)" || true
grep -q 'Setting parameter failed: bandwidth_limit = -5 refused: must be at least 0 B' <<<"$out" || fail "a negative bandwidth_limit was not refused with a clear reason: $out"
[[ "$(get_param bandwidth_limit)" == "Integer value is: 1000000" ]] || fail "a refused bandwidth_limit changed the value"
pass "a refused value (bandwidth_limit -5) keeps the old one, with the reason printed"

call() { timeout 90 ros2 service call "$@" 2>&1 || true; }
out="$(call "$NODE_FQN/pause" std_srvs/srv/Trigger)"
grep -q 'success=True' <<<"$out" || fail "ros2 service call $NODE_FQN/pause: $out"
paused() { echo_once "$NODE_FQN/queue" 30 --qos-durability transient_local --qos-reliability reliable | grep -q "^paused: $1$"; }
wait_for "~/queue shows paused: true" 90 paused true
out="$(call "$NODE_FQN/resume" std_srvs/srv/Trigger)"
grep -q 'success=True' <<<"$out" || fail "ros2 service call $NODE_FQN/resume: $out"
wait_for "~/queue shows paused: false" 90 paused false
pass "ros2 service call ~/pause and ~/resume work"

mkdir -p "$WORK/manual"
head -c 300000 /dev/urandom >"$WORK/manual/extra_0.bin"
out="$(call "$NODE_FQN/enqueue" upload_agent_msgs/srv/Enqueue "{path: '$WORK/manual/extra_0.bin', priority: 1, metadata_json: '{\"source\": \"test:ros\"}'}")"
grep -q 'accepted=True' <<<"$out" || fail "ros2 service call $NODE_FQN/enqueue: $out"
on_server() { local found; found="$(find "$WORK/server/completed" -type f -path "*/$1" 2>/dev/null | head -n 1)"; [[ -n "$found" ]] && cmp -s "$found" "$2"; }
wait_for "the enqueued file arrives byte-identical" 60 on_server extra_0.bin "$WORK/manual/extra_0.bin"
pass "ros2 service call ~/enqueue queued a file and it arrived byte-identical"

# Every closed split arrives byte-identical while recording goes on: all splits but the newest are
# closed (rosbag2 opens split N+1 before it closes split N; the agent confirms before uploading).
closed_splits() {
  local bag
  bag="$(find "$BAG_DIR" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
  [[ -n "$bag" ]] || return 0
  find "$bag" -maxdepth 1 -type f \( -name '*.db3' -o -name '*.mcap' -o -name '*.zstd' \) -printf '%f\n' |
    sed -E 's/^(.*)_([0-9]+)\.(.*)$/\2 &/' | sort -n | head -n -1 | cut -d' ' -f2- | sed "s|^|$bag/|"
}
enough_splits() { (($(closed_splits | wc -l) >= 3)); }
wait_for "three closed splits" $((SPLIT_SECONDS * 10 + 30)) enough_splits
all_on_server() {
  local split
  while read -r split; do
    on_server "$(basename "$(dirname "$split")")/$(basename "$split")" "$split" || return 1
  done < <(closed_splits | head -n 3)
}
wait_for "the first three closed splits arrive on the server byte-identical" 120 all_on_server
kill -0 "$LAUNCH_PID" 2>/dev/null || fail "ros2 launch stopped before the splits were checked"
recording_goes_on() { (($(closed_splits | wc -l) >= 4)); }
wait_for "recording goes on (a fourth split closes)" $((SPLIT_SECONDS * 10 + 30)) recording_goes_on
pass "every closed split checked ($(closed_splits | head -n 3 | xargs -n1 basename | tr '\n' ' ')) arrived byte-identical while recording went on"

# ---- 5. Ctrl-C: the recorder closes its last split and writes metadata.yaml while the agent drains --
# SIGINT to ros2 launch alone: not on a terminal it forwards one SIGINT to each process (on a
# terminal, Ctrl-C reaches them all directly and launch forwards nothing).
BAG="$(find "$BAG_DIR" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
kill -INT "$LAUNCH_PID"
for _ in $(seq 1 60); do kill -0 "$LAUNCH_PID" 2>/dev/null || break; sleep 1; done
kill -0 "$LAUNCH_PID" 2>/dev/null && fail "ros2 launch did not stop within 60 s of SIGINT"
grep -E "upload_agent-[0-9]+\]: process has finished cleanly" "$WORK/launch.log" >/dev/null ||
  fail "the upload_agent process did not finish cleanly after SIGINT"
grep -E "(upload_agent|recorder)-[0-9]+\].*(failed to terminate|escalating to 'SIG)" "$WORK/launch.log" >/dev/null &&
  fail "ros2 launch had to escalate beyond SIGINT"
grep -q 'drained: every file of those recordings is uploaded' "$WORK/launch.log" || fail "the agent did not report a complete drain"
[[ -f "$BAG/metadata.yaml" ]] || fail "the recorder wrote no metadata.yaml in $BAG"
count=0
while read -r file; do
  on_server "$(basename "$BAG")/$(basename "$file")" "$file" || fail "$file is not on the server byte-identical after the drain"
  count=$((count + 1))
done < <(find "$BAG" -maxdepth 1 -type f \( -name '*.db3' -o -name '*.mcap' -o -name '*.zstd' -o -name metadata.yaml \))
pass "SIGINT: the agent drained (the last split and metadata.yaml: all $count files of the bag on the server) and exited cleanly, no escalation"

say "all $PASSED checks passed"
