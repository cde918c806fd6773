package devcluster

import "testing"

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/x":            "/var/lib/x",
		`/tmp/with\040space`:    "/tmp/with space",
		`/tmp/tab\011and\134bs`: "/tmp/tab\tand\\bs",
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestContainsPair(t *testing.T) {
	args := []string{"containerd-shim-runc-v2", "-namespace", "k8s.io", "-address", "/a/run/containerd.sock"}
	if !containsPair(args, "-address", "/a/run/containerd.sock") {
		t.Error("the shim of our containerd is not recognised")
	}
	for _, other := range []string{"/run/containerd/containerd.sock", "/a/run/containerd.sock.ttrpc"} {
		if containsPair(args, "-address", other) {
			t.Errorf("a shim of %s would be killed", other)
		}
	}
}
