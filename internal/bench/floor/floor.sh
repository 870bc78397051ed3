#!/bin/bash
# floor.sh: how much latency does any userspace relay add on this machine?
#
# It builds a two-host lab (vxswitch lab up, namespaces vxfl-*), adds a
# kernel vxlan device and the minimal C relay of relay.c, in both its
# designs, to the same two host namespaces, and pings across each of the
# four paths, interleaved, every 10 ms as `vxswitch lab bench` does. It prints p50 and p99 per round and the
# median of the rounds. Run it as root from the repository root:
#
#   go build -o vxswitch ./cmd/vxswitch && internal/bench/floor/floor.sh [ROUNDS] [PINGS]
#
# Needs gcc, ping and iproute2. VXSWITCH names the binary (default ./vxswitch).
set -euo pipefail
rounds=${1:-5}
pings=${2:-300}
vxs=${VXSWITCH:-./vxswitch}
dir=$(cd "$(dirname "$0")" && pwd)
state=/run/vxswitch/floor
lab=(--prefix vxfl- --state-dir "$state")

for tool in gcc ping ip; do
	command -v $tool >/dev/null || { echo "floor.sh: $tool not found: apt-get install gcc iputils-ping iproute2" >&2; exit 1; }
done
[ -x "$vxs" ] || { echo "floor.sh: no vxswitch binary at $vxs: go build -o vxswitch ./cmd/vxswitch, or set VXSWITCH" >&2; exit 1; }

relays=()
cleanup() {
	for p in "${relays[@]}"; do kill "$p" 2>/dev/null || true; done
	"$vxs" lab down "${lab[@]}" >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$vxs" lab down "${lab[@]}" >/dev/null 2>&1 || true
mkdir -p "$state"
gcc -O2 -Wall -pthread -o "$state/relay" "$dir/relay.c"
"$vxs" lab up "${lab[@]}" --hosts 2 >"$state/up.log" 2>&1 || { cat "$state/up.log" >&2; exit 1; }

# start_relay I TAP PORT VNI NET DESIGN starts the C relay of host I with a
# TAP called TAP at NET.I/24, and waits until it is ready.
start_relay() {
	local i=$1 ns=vxfl-h$1 p=$((3 - $1))
	ip netns exec $ns "$state/relay" $2 10.77.0.$i 10.77.0.$p $3 $4 $6 >"$state/$2$i.log" 2>&1 &
	relays+=($!)
	for _ in $(seq 50); do grep -q ready "$state/$2$i.log" && break; sleep 0.1; done
	grep -q ready "$state/$2$i.log" || { cat "$state/$2$i.log" >&2; exit 1; }
	ip -n $ns link set $2 mtu 1450
	ip -n $ns addr add $5.$i/24 dev $2
	ip -n $ns link set $2 up
}

# Host i has underlay address 10.77.0.i. The kernel's device (VNI 999, port
# 4790) gets 10.99.0.i, the C relay's TAPs 10.97.0.i (threads, VNI 997, port
# 4792) and 10.96.0.i (epoll, VNI 996, port 4793).
for i in 1 2; do
	p=$((3 - i)); ns=vxfl-h$i
	ip -n $ns link add kvx type vxlan id 999 local 10.77.0.$i dev eth0 dstport 4790 nolearning
	bridge -n $ns fdb append 00:00:00:00:00:00 dev kvx dst 10.77.0.$p
	ip -n $ns link set kvx mtu 1450
	ip -n $ns addr add 10.99.0.$i/24 dev kvx
	ip -n $ns link set kvx up
	start_relay $i crt 4792 997 10.97.0 threads
	start_relay $i cre 4793 996 10.96.0 epoll
done

# percentiles NS ADDR: "p50 p99" in us of $pings pings every 10 ms.
percentiles() {
	ip netns exec "$1" ping -c 3 -i 0.01 "$2" >/dev/null
	ip netns exec "$1" ping -c "$pings" -i 0.01 -W 1 "$2" | grep -o 'time=[0-9.]*' | cut -d= -f2 | sort -n |
		awk '{a[NR] = $1} END {if (NR == 0) exit 1; printf "%.0f %.0f", a[int((NR + 1) / 2)] * 1000, a[int(NR * 0.99 + 0.999999)] * 1000}'
}

declare -A p50 p99
paths="kernel c-threads c-epoll vxswitch"
for r in $(seq "$rounds"); do
	line="round $r, p50/p99 us:"
	for path in $paths; do
		case $path in
		kernel) set -- $(percentiles vxfl-h1 10.99.0.2) ;;
		c-threads) set -- $(percentiles vxfl-h1 10.97.0.2) ;;
		c-epoll) set -- $(percentiles vxfl-h1 10.96.0.2) ;;
		vxswitch) set -- $(percentiles vxfl-c1 10.20.0.3) ;;
		esac
		p50[$path]+="$1 "; p99[$path]+="$2 "
		line+=$(printf "  %s %d/%d" $path $1 $2)
	done
	echo "$line"
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
k50=$(echo ${p50[kernel]} | median); k99=$(echo ${p99[kernel]} | median)
echo
echo "medians of $rounds rounds of $pings pings, and the latency added over the kernel's vxlan device:"
for path in $paths; do
	m50=$(echo ${p50[$path]} | median); m99=$(echo ${p99[$path]} | median)
	awk -v p=$path -v a=$m50 -v b=$m99 -v ka=$k50 -v kb=$k99 'BEGIN {printf "  %-10s p50 %4.0f us (+%.0f)  p99 %5.0f us (+%.0f)\n", p, a, a - ka, b, b - kb}'
done
