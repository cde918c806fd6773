// Command image builds the operator's container image without a container
// engine, ko-style: a static bin/fido on an empty base with the CA
// certificates and a non-root user, written as an OCI image layout. Every
// timestamp, owner and order is fixed, so one commit (same binary, same
// CA bundle) always gives the same digest, which it prints last.
//
//	go run ./hack/image -binary bin/fido-linux-amd64 -out dist/image -tag ghcr.io/fido-operator/fido:v0.5.0
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// nonRoot is the image's user and group, distroless' "nonroot".
const nonRoot = 65532

// epoch is every file's and the image's time: a fixed one keeps the digest.
var epoch = time.Unix(0, 0).UTC()

// file is one entry of a layer.
type file struct {
	name string
	mode int64
	body []byte // nil for a directory
}

func main() {
	binary := flag.String("binary", "bin/fido-linux-amd64", "static linux/amd64 manager binary")
	caFile := flag.String("ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to install (Debian's ca-certificates)")
	out := flag.String("out", "dist/image", "OCI image layout directory to write (replaced)")
	tag := flag.String("tag", "", "reference recorded in the layout's org.opencontainers.image.ref.name")
	revision := flag.String("revision", "", "source commit, recorded as the label org.opencontainers.image.revision")
	name := flag.String("name", "fido", "the program's file name in the image root, its entrypoint and title")
	flag.Parse()
	digest, err := build(program{binary: *binary, name: *name}, *caFile, *out, *tag, *revision)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Println(digest)
}

// program is the image's one executable: the file it is built from and
// its name at the image root (/fido for the manager).
type program struct{ binary, name string }

// build writes the image to an OCI layout at out and returns its digest.
func build(prog program, caFile, out, tag, revision string) (v1.Hash, error) {
	body, err := os.ReadFile(prog.binary)
	if err != nil {
		return v1.Hash{}, err
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("CA certificates: %w", err)
	}
	base, err := layer([]file{
		{name: "etc/", mode: 0o755},
		{name: "etc/passwd", mode: 0o644, body: fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonRoot, nonRoot)},
		{name: "etc/group", mode: 0o644, body: fmt.Appendf(nil, "root:x:0:\nnonroot:x:%d:\n", nonRoot)},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, body: ca},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700},
		{name: "tmp/", mode: 0o1777},
	})
	if err != nil {
		return v1.Hash{}, err
	}
	app, err := layer([]file{{name: prog.name, mode: 0o755, body: body}})
	if err != nil {
		return v1.Hash{}, err
	}
	img, err := image(prog.name, revision, base, app)
	if err != nil {
		return v1.Hash{}, err
	}
	return write(img, out, tag)
}

// image stacks the layers on an empty base with the program's config,
// labelled with the source revision.
func image(name, revision string, layers ...v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layers...)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS, cfg.Created = "amd64", "linux", v1.Time{Time: epoch}
	cfg.Config = v1.Config{
		Entrypoint: []string{"/" + name}, // /fido, as the Dockerfile's image
		User:       fmt.Sprintf("%d:%d", nonRoot, nonRoot),
		WorkingDir: "/",
		Env:        []string{"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		Labels: map[string]string{
			"org.opencontainers.image.source": "https://github.com/fido-operator/fido",
			"org.opencontainers.image.title":  name,
		},
	}
	if revision != "" {
		cfg.Config.Labels["org.opencontainers.image.revision"] = revision
	}
	return mutate.ConfigFile(img, cfg)
}

// layer is a gzipped tar of files, in the given order, owned by root
// (home/nonroot by the non-root user), all dated epoch.
func layer(files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: epoch, Typeflag: tar.TypeDir, Format: tar.FormatPAX}
		if f.body != nil {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		if f.name == "home/nonroot/" {
			h.Uid, h.Gid = nonRoot, nonRoot
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	raw := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// write replaces out with an OCI layout holding img and returns its digest.
func write(img v1.Image, out, tag string) (v1.Hash, error) {
	if err := os.RemoveAll(out); err != nil {
		return v1.Hash{}, err
	}
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	var opts []layout.Option
	if tag != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag}))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}
