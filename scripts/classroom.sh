#!/usr/bin/env bash
# A tmux layout for presenting chatroom in class, all on this machine (127.0.0.1):
#
#   +------------------------------+------------------------------+
#   | server with --trace:         | alice (full-screen client)   |
#   | every recv() and frame       +------------------------------+
#   | on the wire                  | bob                          |
#   |                              +------------------------------+
#   |                              | carol                        |
#   +------------------------------+------------------------------+
#
# Usage: scripts/classroom.sh [PORT]     (default 7373; Ctrl-b d detaches,
#        tmux -L chatroom-class kill-server ends it all)
# Needs tmux, and chatroom installed (the README's Quickstart) or run from a checkout.
set -euo pipefail

port="${1:-7373}"
session="chatroom-class"
socket="chatroom-class"  # a private tmux server: never touches your own sessions
here="$(cd "$(dirname "$0")/.." && pwd)"

if command -v chatroom >/dev/null 2>&1; then
    chatroom="chatroom"
elif [ -x "$here/.venv/bin/chatroom" ]; then
    chatroom="$here/.venv/bin/chatroom"
else
    chatroom="python3 -m chatroom"
    export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
fi
command -v tmux >/dev/null 2>&1 || { echo "classroom.sh needs tmux (apt-get install tmux)" >&2; exit 1; }

tmux -L "$socket" kill-server 2>/dev/null || true
tmux -L "$socket" -f /dev/null new-session -d -s "$session" -x 200 -y 50 \
    "$chatroom serve --port $port --memory --trace; read -r -p 'server stopped; press Enter'"
tmux -L "$socket" set -g mouse on
# Give the server a moment to listen, then the three clients, each in its own pane.
for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
tmux -L "$socket" split-window -h -t "$session:0.0" "$chatroom join 127.0.0.1:$port --nick alice"
tmux -L "$socket" split-window -v -t "$session:0.1" "$chatroom join 127.0.0.1:$port --nick bob"
tmux -L "$socket" split-window -v -t "$session:0.2" "$chatroom join 127.0.0.1:$port --nick carol"
tmux -L "$socket" select-layout -t "$session:0" main-vertical
tmux -L "$socket" select-pane -t "$session:0.1"
if [ -n "${CHATROOM_NO_ATTACH:-}" ]; then
    echo "started tmux session '$session' on socket '$socket' (attach: tmux -L $socket attach)"
else
    exec tmux -L "$socket" attach -t "$session"
fi
