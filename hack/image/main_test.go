package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// inputs writes a fake manager binary and CA bundle.
func inputs(t *testing.T, binary string) (bin, ca string) {
	t.Helper()
	dir := t.TempDir()
	bin, ca = filepath.Join(dir, "manager"), filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(bin, []byte(binary), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return bin, ca
}

// TestSameInputsSameDigest: the image is a function of the binary and the
// CA bundle only, not of when or where it is built.
func TestSameInputsSameDigest(t *testing.T) {
	bin, ca := inputs(t, "manager v1")
	first, err := build(program{bin, "fido"}, ca, filepath.Join(t.TempDir(), "a"), "example/fido:v1", "abc123")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(bin, epoch.AddDate(30, 0, 0), epoch.AddDate(30, 0, 0)); err != nil {
		t.Fatal(err)
	}
	second, err := build(program{bin, "fido"}, ca, filepath.Join(t.TempDir(), "b"), "example/fido:v1", "abc123")
	if err != nil || second != first {
		t.Fatalf("second build %v (%v), want %v", second, err, first)
	}
	other, _ := inputs(t, "manager v2")
	if third, err := build(program{other, "fido"}, ca, filepath.Join(t.TempDir(), "c"), "example/fido:v1", "abc123"); err != nil || third == first {
		t.Errorf("another binary gave %v (%v), the same digest", third, err)
	}
	if fourth, err := build(program{bin, "fido"}, ca, filepath.Join(t.TempDir(), "d"), "example/fido:v1", "def456"); err != nil || fourth == first {
		t.Errorf("another commit gave %v (%v), the same digest", fourth, err)
	}
}

// TestImageRunsTheManagerAsNonRoot reads the written layout back: one
// image, the manager as entrypoint, a non-root user, the files in place.
func TestImageRunsTheManagerAsNonRoot(t *testing.T) {
	bin, ca := inputs(t, "manager")
	out := filepath.Join(t.TempDir(), "layout")
	digest, err := build(program{bin, "fido"}, ca, out, "", "abc123")
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	img, err := p.Image(digest)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.Labels["org.opencontainers.image.revision"] != "abc123" || cfg.Config.User != "65532:65532" || !slices.Equal(cfg.Config.Entrypoint, []string{"/fido"}) || cfg.OS != "linux" || !cfg.Created.Equal(epoch) {
		t.Errorf("config %+v created %v", cfg.Config, cfg.Created)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if !h.ModTime.Equal(epoch) {
				t.Errorf("%s dated %v", h.Name, h.ModTime)
			}
			names = append(names, h.Name)
		}
		rc.Close()
	}
	for _, want := range []string{"etc/passwd", "etc/ssl/certs/ca-certificates.crt", "tmp/", "fido"} {
		if !slices.Contains(names, want) {
			t.Errorf("the image lacks %s: %v", want, names)
		}
	}
}
