package ingest

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/testenv"
)

// TestSpoolDetectorShare: one detector fills at most its share of the
// spool; the others still find room, also after a restart.
func TestSpoolDetectorShare(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s, err := OpenSpool(path, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	s.SetDetectorShare(0.5)
	alerts := func(detector string, n int) []*Alert {
		out := make([]*Alert, n)
		for i := range out {
			out[i] = &Alert{Detector: detector, Rule: "r"}
		}
		return out
	}
	if err := s.Put(alerts("falco", 5)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(alerts("falco", 1)); !errors.Is(err, ErrSpoolFull) || !strings.Contains(err.Error(), "its share is 5") {
		t.Fatalf("a sixth falco alert: %v, want the share refused", err)
	}
	if err := s.Put(alerts("alertmanager", 5)); err != nil {
		t.Fatalf("another detector must still find room: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenSpool(path, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetDetectorShare(0.5)
	if err := s.Put(alerts("falco", 1)); !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("after a restart the share must still be counted: %v", err)
	}
	items, err := s.peek(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.delete(items); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(alerts("falco", 2)); err != nil {
		t.Fatalf("drained alerts free their detector's share: %v", err)
	}
}

// TestOpenIncidentCap: a detector with as many unresolved incidents as it
// may have gets 429; resolved incidents do not count; a scope may raise
// the cap.
func TestOpenIncidentCap(t *testing.T) {
	var objs []client.Object
	for i, resolution := range []fidov1.Resolution{"", "", "", fidov1.ResolutionResolved} {
		objs = append(objs, &fidov1.Incident{
			ObjectMeta: metav1.ObjectMeta{Name: "inc-" + string(rune('a'+i)), Namespace: "shop", Labels: map[string]string{fidov1.LabelDetector: "falco"}},
			Spec:       fidov1.IncidentSpec{Detector: "falco", Resolution: resolution},
		})
	}
	cache := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(objs...).Build()
	alerts := []*Alert{{Detector: "falco"}, {Detector: "other"}}
	for _, tc := range []struct {
		cap    int
		scopes Scopes
		want   int
	}{
		{cap: 3, want: http.StatusTooManyRequests},
		{cap: 4, want: 0},
		{cap: -1, want: 0},
		{cap: 3, scopes: Scopes{ByDetector: map[string]Scope{"falco": {MaxOpenIncidents: 10}}}, want: 0},
	} {
		s := &Server{opts: Options{Cache: cache, MaxOpenIncidents: tc.cap, Logger: logr.Discard()}}
		ans, ok := s.underOpenCap(context.Background(), tc.scopes, alerts)
		if got := map[bool]int{false: ans.code, true: 0}[ok]; got != tc.want {
			t.Errorf("cap %d scopes %+v: %d %v, want %d", tc.cap, tc.scopes, got, ans.body, tc.want)
		}
	}

	// Alerts admitted a moment ago count before the cache shows them: with
	// 3 cached and a cap of 4, one request of one falco alert fits, the
	// next does not, until the cache lag has passed.
	s := &Server{opts: Options{Cache: cache, MaxOpenIncidents: 4, Logger: logr.Discard()}}
	one := []*Alert{{Detector: "falco"}}
	if _, ok := s.underOpenCap(context.Background(), Scopes{}, one); !ok {
		t.Fatal("the fourth incident must fit")
	}
	if ans, ok := s.underOpenCap(context.Background(), Scopes{}, one); ok || ans.code != http.StatusTooManyRequests {
		t.Errorf("3 cached + 1 admitted against a cap of 4: ok=%v %d", ok, ans.code)
	}
	if _, ok := s.open.admit("falco", 1, 3, 4, time.Now().Add(cacheLag+time.Second)); !ok {
		t.Error("admissions older than the cache lag still count")
	}
}
