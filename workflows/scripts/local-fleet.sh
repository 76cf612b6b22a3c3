#!/bin/sh
# Ten local "hosts" for workflows/rolling.toml: one OpenSSH sshd, run as you, listening on
# 127.0.0.2 - 127.0.0.11 port 2222 (loopback only), with its own host and client keys and a
# known_hosts file under ~/.cache/console-fleet (what workflows/hosts.toml points at).
#   workflows/scripts/local-fleet.sh         start them
#   workflows/scripts/local-fleet.sh stop    stop them
set -eu
dir="$HOME/.cache/console-fleet"
port=2222
case "${1:-start}" in
  stop)
    if [ -f "$dir/sshd.pid" ]; then kill "$(cat "$dir/sshd.pid")" && rm -f "$dir/sshd.pid"; fi
    exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac
sshd=$(command -v sshd || echo /usr/sbin/sshd)
if [ ! -x "$sshd" ]; then
  echo "local-fleet: OpenSSH's sshd is not installed (Debian: apt-get install openssh-server)" >&2
  exit 1
fi
if [ -f "$dir/sshd.pid" ] && kill -0 "$(cat "$dir/sshd.pid")" 2>/dev/null; then
  echo "local-fleet: already running (pid $(cat "$dir/sshd.pid"))"; exit 0
fi
mkdir -p "$dir" && chmod 700 "$dir"
[ -f "$dir/host_key" ] || ssh-keygen -q -t ed25519 -N "" -C local-fleet -f "$dir/host_key"
[ -f "$dir/client_key" ] || ssh-keygen -q -t ed25519 -N "" -C local-fleet -f "$dir/client_key"
cp "$dir/client_key.pub" "$dir/authorized_keys"
: > "$dir/known_hosts"
: > "$dir/sshd.conf"
for n in 2 3 4 5 6 7 8 9 10 11; do
  echo "ListenAddress 127.0.0.$n:$port" >> "$dir/sshd.conf"
  echo "[127.0.0.$n]:$port $(cut -d' ' -f1,2 "$dir/host_key.pub")" >> "$dir/known_hosts"
done
cat >> "$dir/sshd.conf" <<CONF
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
SetEnv SHLVL=1
MaxSessions 50
UseDNS no
LogLevel ERROR
CONF
if [ "$(id -u)" = 0 ]; then mkdir -p /run/sshd; fi
"$sshd" -f "$dir/sshd.conf" -E "$dir/sshd.log"
echo "local-fleet: 10 hosts on 127.0.0.2-11 port $port (keys in $dir)"
echo "  try: console run workflows/rolling.toml -p version=2.1.0"
