#!/usr/bin/env bash
# Builds kube-apiserver, etcd and kubectl from the Go module proxy into a
# cache outside the checkout and prints the directory (KUBEBUILDER_ASSETS).
# A second run with the same go.mod/go.sum reuses the cached binaries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/version.sh"
key=$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" "$here/version.sh" | sha256sum | cut -c1-12)
cache=${FIDO_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fido/k8s}
out="$cache/$k8s_version-$key"
if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ] && [ -x "$out/kubectl" ]; then
  echo "$out"; exit 0
fi
mkdir -p "$out.tmp"
cd "$here"
echo "building kube-apiserver, etcd and kubectl $k8s_version into $out (first time: several minutes)" >&2
CGO_ENABLED=0 go build -trimpath -ldflags "$k8s_ldflags" -o "$out.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
CGO_ENABLED=0 go build -trimpath -ldflags "$k8s_ldflags" -o "$out.tmp/kubectl" k8s.io/kubernetes/cmd/kubectl
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" ./etcd
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out"
