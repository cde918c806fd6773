// Package version says which build of FIDO is running: the release, and
// the commit it was built from when the Go toolchain recorded it.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Version is the release; config/manager pins the image tag to it. A
// release build may set it with -ldflags "-X .../internal/version.Version=v…".
var Version = "v0.5.0"

// Info is what the build records.
type Info struct {
	Version, Revision, GoVersion string
	Modified                     bool
}

// Get reads the build information.
func Get() Info {
	info := Info{Version: Version, Revision: "unknown", GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	return info
}

// String is the one line `fido --version` prints.
func (i Info) String() string {
	rev := i.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if i.Modified {
		rev += ", modified"
	}
	return fmt.Sprintf("fido %s (commit %s, %s)", i.Version, rev, i.GoVersion)
}

// RegisterMetric publishes fido_build_info{version,revision,goversion} 1.
func RegisterMetric() {
	i := Get()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fido_build_info",
		Help: "The running build: always 1, labelled with its version, commit and Go version.",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(i.Version, i.Revision, i.GoVersion).Set(1)
	metrics.Registry.MustRegister(g)
}
