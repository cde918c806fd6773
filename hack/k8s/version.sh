# Sourced by hack/k8s/build.sh and hack/node/build.sh: the Kubernetes
# version both build, and the ldflags that make the binaries report it.
k8s_version=v1.37.2
major=${k8s_version#v}; major=${major%%.*}
minor=${k8s_version#v*.}; minor=${minor%%.*}
v=k8s.io/component-base/version
k8s_ldflags="-s -w -X $v.gitVersion=$k8s_version -X $v.gitMajor=$major -X $v.gitMinor=$minor \
 -X $v.gitTreeState=clean -X $v.buildDate=2026-01-01T00:00:00Z \
 -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version -X k8s.io/client-go/pkg/version.gitMajor=$major \
 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
