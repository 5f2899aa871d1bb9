#!/usr/bin/env bash
# Build etcd, kube-apiserver, kube-controller-manager and helm from the pinned wrapper
# modules in go/ (go.mod + go.sum only) into a cache outside the checkout, keyed by a hash
# of those files and of this script (its ldflags). Prints the bin directory on stdout;
# progress goes to stderr. Idempotent: a finished build is found by its stamp and reused.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# The versions, for /version and `helm version`; the go.mod files are what pin the code.
K8S=v1.37.2
HELM=v4.3.2

key=$(cat "$here"/go/*/go.mod "$here"/go/*/go.sum "$0" | sha256sum | cut -c1-16)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/mcpgate-cluster/$key
bin=$cache/bin
if [[ -f $cache/built ]]; then
    echo "$bin"
    exit 0
fi

command -v go >/dev/null || { echo "cluster: no Go toolchain on PATH: cannot build the control plane" >&2; exit 3; }
# local: a go.mod asking for another toolchain fails here instead of downloading one.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -trimpath -modcacherw -buildvcs=false"

need_gib=8
for d in "$(go env GOCACHE)" "$(go env GOMODCACHE)" "$cache"; do
    mkdir -p "$d"
    avail=$(df -Pk "$d" | awk 'NR==2 {print $4}')
    if (( avail < need_gib * 1024 * 1024 )); then
        echo "cluster: need ${need_gib} GiB free under $d, have $((avail / 1024 / 1024)) GiB" >&2
        exit 4
    fi
done

mkdir -p "$bin"
t0=$SECONDS
echo "cluster: first build of the control plane (Kubernetes $K8S, etcd, helm $HELM) into $bin" >&2
echo "cluster: this is long: tens of minutes on 2 cores (cached afterwards)" >&2

# build NAME DIR ARGS...: go build -v in module DIR; one progress line per 100 packages.
build() {
    local name=$1 dir=$2 t=$SECONDS log=$cache/build-$1.log
    shift 2
    echo "cluster: [$((SECONDS - t0))s] building $name" >&2
    (cd "$here/go/$dir" && go build -v "$@") >"$log" 2>&1 </dev/null &
    local pid=$! n=0 last=0
    while kill -0 "$pid" 2>/dev/null; do
        sleep 15
        n=$(wc -l <"$log")
        if (( n >= last + 100 )); then
            echo "cluster: [$((SECONDS - t0))s]   $name: $n packages compiled" >&2
            last=$n
        fi
    done
    if ! wait "$pid"; then
        echo "cluster: building $name failed; the end of $log:" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
    echo "cluster: [$((SECONDS - t0))s] built $name in $((SECONDS - t))s" >&2
}

vpkg=k8s.io/component-base/version
kld="-s -w -X $vpkg.gitVersion=$K8S -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=37"
kld+=" -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=2026-01-01T00:00:00Z"

build kube-apiserver kube -ldflags "$kld" -o "$bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager kube -ldflags "$kld" -o "$bin/kube-controller-manager" \
    k8s.io/kubernetes/cmd/kube-controller-manager
build etcd etcd -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3
build helm helm -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM" \
    -o "$bin/helm" helm.sh/helm/v4/cmd/helm

echo "cluster: [$((SECONDS - t0))s] control plane built: $(du -sh "$bin" | cut -f1) in $bin" >&2
touch "$cache/built"
echo "$bin"
