package ingest

import (
	"context"
	"errors"
	"fmt"
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

// TestSpoolDetectorShare: one credential fills at most its share of the
// spool, whatever detector names it uses; the others still find room,
// also after a restart.
func TestSpoolDetectorShare(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s, err := OpenSpool(path, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	s.SetDetectorShare(0.5)
	alerts := func(credential string, n int) []*Alert {
		out := make([]*Alert, n)
		for i := range out {
			out[i] = &Alert{Detector: fmt.Sprintf("ids-%d", i), Credential: credential, Rule: "r"}
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

// TestOpenIncidentCap: a credential with as many unresolved incidents
// as it may have gets 429; resolved incidents do not count; a scope may
// raise the cap; another credential is not counted against it, whatever
// detector names either posts under.
func TestOpenIncidentCap(t *testing.T) {
	var objs []client.Object
	for i, resolution := range []fidov1.Resolution{"", "", "", fidov1.ResolutionResolved} {
		objs = append(objs, &fidov1.Incident{
			ObjectMeta: metav1.ObjectMeta{Name: "inc-" + string(rune('a'+i)), Namespace: "shop",
				Labels: map[string]string{fidov1.LabelDetector: "ids-" + string(rune('a'+i)), fidov1.LabelCredential: "generic"}},
			Spec: fidov1.IncidentSpec{Detector: "ids-" + string(rune('a'+i)), Resolution: resolution},
		})
	}
	cache := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(objs...).Build()
	fresh := &Alert{Detector: "ids-new", Credential: "generic"} // a new name counts against the same token
	other := &Alert{Detector: "ids-a", Credential: "falco"}     // another token, the same detector name
	for _, tc := range []struct {
		name   string
		cap    int
		scopes Scopes
		alerts []*Alert
		want   int
	}{
		{name: "full", cap: 3, alerts: []*Alert{fresh}, want: http.StatusTooManyRequests},
		{name: "room for one", cap: 4, alerts: []*Alert{fresh}, want: 0},
		{name: "unlimited", cap: -1, alerts: []*Alert{fresh}, want: 0},
		{name: "the scope raises it", cap: 3, scopes: Scopes{ByDetector: map[string]Scope{"generic": {MaxOpenIncidents: 10}}}, alerts: []*Alert{fresh}, want: 0},
		{name: "another credential is not counted", cap: 3, alerts: []*Alert{other}, want: 0},
		{name: "one alert over the cap refuses the request", cap: 3, alerts: []*Alert{other, fresh}, want: http.StatusTooManyRequests},
	} {
		s := &Server{opts: Options{Cache: cache, MaxOpenIncidents: tc.cap, Logger: logr.Discard()}}
		ans, ok := s.underOpenCap(context.Background(), tc.scopes, tc.alerts)
		if got := map[bool]int{false: ans.code, true: 0}[ok]; got != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.name, got, ans.body, tc.want)
		}
	}

	// Alerts admitted a moment ago count before the cache shows them: with
	// 3 cached and a cap of 4, one request of one alert fits, the next
	// does not, until the cache lag has passed.
	s := &Server{opts: Options{Cache: cache, MaxOpenIncidents: 4, Logger: logr.Discard()}}
	one := []*Alert{fresh}
	if _, ok := s.underOpenCap(context.Background(), Scopes{}, one); !ok {
		t.Fatal("the fourth incident must fit")
	}
	if ans, ok := s.underOpenCap(context.Background(), Scopes{}, one); ok || ans.code != http.StatusTooManyRequests {
		t.Errorf("3 cached + 1 admitted against a cap of 4: ok=%v %d", ok, ans.code)
	}
	l := limits{incidents: 4}
	if _, over := s.open.admit("generic", usage{n: 1}, usage{n: 3}, l, time.Now().Add(cacheLag+time.Second)); over != "" {
		t.Errorf("admissions older than the cache lag still count: %s", over)
	}
}

// TestOpenBytesCap: the bytes of a credential's open incidents are capped
// too, so few but large alerts cannot fill etcd either.
func TestOpenBytesCap(t *testing.T) {
	big := &fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{Name: "big", Namespace: "shop", Labels: map[string]string{fidov1.LabelCredential: "generic"}},
		Spec:       fidov1.IncidentSpec{Detector: "ids", Summary: strings.Repeat("x", 10_000)},
	}
	cache := fake.NewClientBuilder().WithScheme(testenv.Scheme()).WithObjects(big).Build()
	small := &Alert{Detector: "ids", Credential: "generic", Summary: "short"}
	for _, tc := range []struct {
		name   string
		cap    int64
		scopes Scopes
		ok     bool
	}{
		{name: "10 kB held, 10 kB cap", cap: 10_000, ok: false},
		{name: "room", cap: 20_000, ok: true},
		{name: "unlimited", cap: -1, ok: true},
		{name: "the scope raises it", cap: 10_000, scopes: Scopes{ByDetector: map[string]Scope{"generic": {MaxOpenBytes: 1 << 20}}}, ok: true},
	} {
		s := &Server{opts: Options{Cache: cache, MaxOpenBytes: tc.cap, Logger: logr.Discard()}}
		ans, ok := s.underOpenCap(context.Background(), tc.scopes, []*Alert{small})
		if ok != tc.ok {
			t.Errorf("%s: ok=%v %d %v", tc.name, ok, ans.code, ans.body)
		}
		if !ok && !strings.Contains(fmt.Sprint(ans.body["error"]), "bytes of open incidents") {
			t.Errorf("%s: the refusal must name the byte cap: %v", tc.name, ans.body)
		}
	}
}
