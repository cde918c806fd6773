package console

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
)

// BenchmarkOverview renders the overview over 10,000 incidents: the
// server time of one page view once the reviews are cached (the
// authority here answers at once; the real one caches answers for 10 s).
func BenchmarkOverview(b *testing.B) {
	benchPage(b, "/", allowAll)
}

// BenchmarkIncidentListFiltered renders a filtered, text-searched, sorted
// page of the incident list over 10,000 incidents.
func BenchmarkIncidentListFiltered(b *testing.B) {
	benchPage(b, "/incidents?phase=open&severity=Critical&q=shell&sort=score", allowAll)
}

// BenchmarkIncidentListOneNamespace is a user who may list incidents in
// one namespace only: the 10,000 are filtered per namespace first.
func BenchmarkIncidentListOneNamespace(b *testing.B) {
	benchPage(b, "/incidents?q=web", func(a authzv1.ResourceAttributes) bool { return a.Namespace == "team-03" })
}

func benchPage(b *testing.B, path string, allow func(authzv1.ResourceAttributes) bool) {
	b.Helper()
	now := time.Now()
	s := newTestServer(&memStore{incs: fakeIncidents(10000, now)}, allow, now)
	h := s.Handler()
	req := httptest.NewRequest(http.MethodGet, path, http.NoBody)
	req.Header.Set("Authorization", "Bearer x")
	req.Header.Set("Accept", "text/html")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", path, w.Code, w.Body.String())
		}
	}
}
