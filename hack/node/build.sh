#!/usr/bin/env bash
# Builds the dev node's binaries and images from the Go module proxy into a
# cache outside the checkout and prints the directory: kubelet,
# kube-controller-manager and kube-scheduler (hack/k8s's module), containerd
# and its runc shim and ctr, runc (cgo, with seccomp: Debian's
# libseccomp-dev), the CNI plugins, and the sandbox (pause) and probe images
# as OCI archives. A second run with the same inputs reuses the cache.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/hack/k8s/version.sh"
containerd_version=v2.4.2
runc_version=v1.5.3
cni_version=v1.10.0
key=$(cat "$root/hack/k8s/go.mod" "$root/hack/k8s/go.sum" "$root/hack/k8s/version.sh" "$here/build.sh" \
  "$here/pause/main.go" "$here/probe/main.go" "$root/hack/image/main.go" | sha256sum | cut -c1-12)
cache=${FIDO_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fido/node}
out="$cache/$k8s_version-$key"
if [ -f "$out/.complete" ]; then
  echo "$out"; exit 0
fi
if ! [ -e /usr/include/seccomp.h ]; then
  echo "runc needs libseccomp's headers: apt-get install -y libseccomp-dev" >&2; exit 1
fi
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
echo "building the dev node (kubelet, containerd, runc, CNI) into $out (first time: several minutes)" >&2
(cd "$root/hack/k8s" && for cmd in kubelet kube-controller-manager kube-scheduler; do
  CGO_ENABLED=0 go build -trimpath -ldflags "$k8s_ldflags" -o "$out.tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd"
done)
export GOBIN="$out.tmp" GOFLAGS=-trimpath
CGO_ENABLED=0 go install -ldflags "-s -w" -tags no_btrfs,no_devmapper,no_zfs \
  "github.com/containerd/containerd/v2/cmd/containerd@$containerd_version" \
  "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$containerd_version" \
  "github.com/containerd/containerd/v2/cmd/ctr@$containerd_version"
CGO_ENABLED=1 go install -ldflags "-s -w" -tags seccomp "github.com/opencontainers/runc@$runc_version"
CGO_ENABLED=0 go install -ldflags "-s -w" \
  "github.com/containernetworking/plugins/plugins/main/bridge@$cni_version" \
  "github.com/containernetworking/plugins/plugins/main/loopback@$cni_version" \
  "github.com/containernetworking/plugins/plugins/ipam/host-local@$cni_version" \
  "github.com/containernetworking/plugins/plugins/meta/portmap@$cni_version"
unset GOBIN GOFLAGS
cd "$root"
for prog in pause probe; do
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp/$prog.bin" "./hack/node/$prog"
  go run ./hack/image -binary "$out.tmp/$prog.bin" -name "$prog" -out "$out.tmp/$prog-oci" -tag "localhost/fido-$prog:dev" >/dev/null
  tar -C "$out.tmp/$prog-oci" --sort=name --mtime=@0 --owner=0 --group=0 -cf "$out.tmp/fido-$prog.tar" .
  rm -rf "$out.tmp/$prog.bin" "$out.tmp/$prog-oci"
done
touch "$out.tmp/.complete"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out"
