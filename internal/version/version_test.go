package version

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	got := Info{Version: "v1.2.3", Revision: "0123456789abcdef", GoVersion: "go1.26", Modified: true}.String()
	if got != "fido v1.2.3 (commit 0123456789ab, modified, go1.26)" {
		t.Errorf("String() = %q", got)
	}
	if live := Get(); live.Version != Version || !strings.HasPrefix(live.GoVersion, "go") {
		t.Errorf("Get() = %+v", live)
	}
}
