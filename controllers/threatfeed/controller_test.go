package threatfeed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/egress"
	"github.com/fido-operator/fido/internal/enrich"
	"github.com/fido-operator/fido/internal/intel"
	"github.com/fido-operator/fido/internal/testenv"
)

const tfWait = 30 * time.Second

// The index is what the intel enricher matches against.
var _ enrich.IntelMatcher = (*intel.Index)(nil)

// tfFeedServer serves a feed whose answer a test can switch, honouring
// If-None-Match, and records what it was asked.
type tfFeedServer struct {
	*httptest.Server
	mu          sync.Mutex
	status      int
	body, etag  string
	full, cond  int      // 200 answers and 304 answers
	apiKeysSeen []string // X-Api-Key values received
}

// tfServeFeed starts a feed server answering 200 with body and etag.
func tfServeFeed(t *testing.T, body, etag string) *tfFeedServer {
	t.Helper()
	s := &tfFeedServer{status: http.StatusOK, body: body, etag: etag}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *tfFeedServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiKeysSeen = append(s.apiKeysSeen, r.Header.Get("X-Api-Key"))
	if s.etag != "" && r.Header.Get("If-None-Match") == s.etag && s.status == http.StatusOK {
		s.cond++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if s.etag != "" {
		w.Header().Set("ETag", s.etag)
	}
	if s.status == http.StatusOK {
		s.full++
	}
	w.WriteHeader(s.status)
	fmt.Fprint(w, s.body)
}

// set switches the server's answer.
func (s *tfFeedServer) set(status int, body, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body, s.etag = status, body, etag
}

// counts returns how many full and conditional answers were sent.
func (s *tfFeedServer) counts() (full, cond int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.full, s.cond
}

// tfStart runs the ThreatFeed controller with a fresh index.
func tfStart(t *testing.T) *intel.Index {
	t.Helper()
	index := intel.NewIndex()
	env.Run(t, func(mgr manager.Manager) error {
		return (&Reconciler{Index: index, Fetcher: &intel.Fetcher{Egress: egress.NewFilter(netip.MustParsePrefix("127.0.0.1/32"))}}).SetupWithManager(context.Background(), mgr, controller.Options{})
	})
	return index
}

// tfCreate creates an object and deletes it when the test ends.
func tfCreate(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %s: %v", obj.GetName(), err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), obj) })
}

// tfWaitFor polls the feed until check passes and returns it.
func tfWaitFor(t *testing.T, name string, check func(*fidov1.ThreatFeed) error) *fidov1.ThreatFeed {
	t.Helper()
	feed := &fidov1.ThreatFeed{}
	testenv.Eventually(t, tfWait, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, feed); err != nil {
			return err
		}
		return check(feed)
	})
	return feed
}

// tfReady checks the Ready condition's status, reason and message.
func tfReady(status metav1.ConditionStatus, reason, msgPart string) func(*fidov1.ThreatFeed) error {
	return func(f *fidov1.ThreatFeed) error {
		c := meta.FindStatusCondition(f.Status.Conditions, fidov1.ConditionReady)
		if c == nil || c.Status != status || c.Reason != reason || !strings.Contains(c.Message, msgPart) {
			return fmt.Errorf("ready = %+v, want %s/%s containing %q", c, status, reason, msgPart)
		}
		return nil
	}
}

// tfAll combines checks.
func tfAll(checks ...func(*fidov1.ThreatFeed) error) func(*fidov1.ThreatFeed) error {
	return func(f *fidov1.ThreatFeed) error {
		for _, check := range checks {
			if err := check(f); err != nil {
				return err
			}
		}
		return nil
	}
}

// tfCount checks the indicator count.
func tfCount(n int64) func(*fidov1.ThreatFeed) error {
	return func(f *fidov1.ThreatFeed) error {
		if f.Status.IndicatorCount != n {
			return fmt.Errorf("indicatorCount = %d, want %d", f.Status.IndicatorCount, n)
		}
		return nil
	}
}

// tfHits returns the feeds that list an IP.
func tfHits(index *intel.Index, ip string) []string {
	var feeds []string
	for _, h := range index.Lookup(fidov1.IndicatorIP, ip) {
		feeds = append(feeds, h.Feed)
	}
	return feeds
}

func TestThreatFeedURLLifecycle(t *testing.T) {
	const apiKey, queryToken = "tf-secret-api-key-123", "tf-secret-query-456"
	index := tfStart(t)
	ns := env.NewNamespace(t, nil)
	name := ns + "-url"
	srv := tfServeFeed(t, "# abuse.ch style\n198.51.100.1\n198.51.100.2 # c2\n198.51.100.3\nevil.example\n<html>\n", `"v1"`)
	tfCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "feed-headers"}, StringData: map[string]string{"X-Api-Key": apiKey}})
	tfCreate(t, &fidov1.ThreatFeed{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: fidov1.ThreatFeedSpec{
			URL:              srv.URL + "/feed.txt?token=" + queryToken,
			HeadersSecretRef: &fidov1.ObjectRef{Namespace: ns, Name: "feed-headers"},
			Confidence:       80, Tags: []string{"c2"},
			RefreshInterval: &metav1.Duration{Duration: time.Second},
		},
	})

	feed := tfWaitFor(t, name, tfAll(tfReady(metav1.ConditionTrue, fidov1.ReasonSynced, "4 indicators loaded"), tfCount(4)))
	if feed.Status.CountsByType["IP"] != 3 || feed.Status.CountsByType["Domain"] != 1 || feed.Status.InvalidEntries != 1 ||
		len(feed.Status.InvalidSamples) != 1 || !strings.HasPrefix(feed.Status.InvalidSamples[0], "line 6:") ||
		feed.Status.ETag != `"v1"` || feed.Status.ObservedGeneration != feed.Generation || feed.Status.LastSyncTime == nil {
		t.Fatalf("status after the first sync = %+v", feed.Status)
	}
	hits := index.Lookup(fidov1.IndicatorIP, "198.51.100.2")
	if len(hits) != 1 || hits[0].Feed != name || hits[0].Confidence != 80 || strings.Join(hits[0].Tags, ",") != "c2" {
		t.Fatalf("hits = %+v", hits)
	}

	t.Run("refresh uses a conditional GET", func(t *testing.T) {
		testenv.Eventually(t, tfWait, func() error {
			if _, cond := srv.counts(); cond == 0 {
				return fmt.Errorf("no conditional GET yet")
			}
			return nil
		})
		tfWaitFor(t, name, tfAll(tfReady(metav1.ConditionTrue, fidov1.ReasonSynced, ""), tfCount(4)))
	})

	t.Run("a failing refresh keeps the indicators", func(t *testing.T) {
		srv.set(http.StatusInternalServerError, "boom", "")
		feed := tfWaitFor(t, name, tfAll(tfReady(metav1.ConditionFalse, fidov1.ReasonSyncFailed, "500 Internal Server Error; keeping the 4 indicators loaded before"), tfCount(4)))
		if c := meta.FindStatusCondition(feed.Status.Conditions, fidov1.ConditionReconciling); c == nil || c.Status != metav1.ConditionTrue {
			t.Errorf("reconciling = %+v, want True while retrying", c)
		}
		if !strings.Contains(feed.Status.LastError, "500") {
			t.Errorf("lastError = %q", feed.Status.LastError)
		}
		if got := tfHits(index, "198.51.100.1"); len(got) != 1 {
			t.Errorf("indicators dropped after a failed refresh: %v", got)
		}
		tfAssertNoSecrets(t, feed, apiKey, queryToken)
	})

	t.Run("junk content keeps the indicators", func(t *testing.T) {
		srv.set(http.StatusOK, "<html><body>maintenance</body></html>\n", "")
		tfWaitFor(t, name, tfAll(tfReady(metav1.ConditionFalse, fidov1.ReasonSyncFailed, "no valid indicators (1 invalid entries); keeping the 4"), tfCount(4)))
		if got := tfHits(index, "198.51.100.1"); len(got) != 1 {
			t.Errorf("indicators dropped after junk: %v", got)
		}
	})

	t.Run("a good refresh replaces the set", func(t *testing.T) {
		srv.set(http.StatusOK, "203.0.113.7\n", `"v2"`)
		tfWaitFor(t, name, tfAll(tfReady(metav1.ConditionTrue, fidov1.ReasonSynced, "1 indicators loaded"), tfCount(1)))
		if len(tfHits(index, "198.51.100.1")) != 0 || len(tfHits(index, "203.0.113.7")) != 1 {
			t.Errorf("index not replaced: old %v new %v", tfHits(index, "198.51.100.1"), tfHits(index, "203.0.113.7"))
		}
	})

	t.Run("the API key was sent", func(t *testing.T) {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for _, k := range srv.apiKeysSeen {
			if k != apiKey {
				t.Fatalf("request with X-Api-Key %q", k)
			}
		}
	})

	t.Run("deleting the feed empties the index", func(t *testing.T) {
		if err := env.Client.Delete(context.Background(), &fidov1.ThreatFeed{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, tfWait, func() error {
			if index.Has(name) {
				return fmt.Errorf("feed still in the index")
			}
			return nil
		})
	})
}

// tfAssertNoSecrets fails when the status mentions a secret.
func tfAssertNoSecrets(t *testing.T, feed *fidov1.ThreatFeed, secrets ...string) {
	t.Helper()
	raw, err := json.Marshal(feed.Status)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if strings.Contains(string(raw), s) {
			t.Errorf("status leaks a secret: %s", raw)
		}
	}
}

func TestThreatFeedInlineConfigMapAndSecret(t *testing.T) {
	index := tfStart(t)
	changes := Changes(index)
	ns := env.NewNamespace(t, nil)
	inline, fromCM, fromSecret := ns+"-inline", ns+"-cm", ns+"-secret"

	tfCreate(t, &fidov1.ThreatFeed{ObjectMeta: metav1.ObjectMeta{Name: inline},
		Spec: fidov1.ThreatFeedSpec{Inline: []string{"192.0.2.1", "10.0.0.0/8", "evil.example"}}})
	tfWaitFor(t, inline, tfAll(tfReady(metav1.ConditionTrue, fidov1.ReasonSynced, "3 indicators loaded"), tfCount(3)))
	if got := tfHits(index, "10.20.30.40"); len(got) != 1 || got[0] != inline {
		t.Errorf("CIDR from an inline feed: hits %v", got)
	}
	assertFeedGauges(t, inline, 1, 3)
	select {
	case ev := <-changes:
		if ev.Object.GetName() == "" {
			t.Error("change event without a feed name")
		}
	case <-time.After(tfWait):
		t.Error("no change event after a feed loaded")
	}

	t.Run("configmap that appears later", func(t *testing.T) {
		tfCreate(t, &fidov1.ThreatFeed{ObjectMeta: metav1.ObjectMeta{Name: fromCM},
			Spec: fidov1.ThreatFeedSpec{ConfigMapRef: &fidov1.ObjectKeyRef{Namespace: ns, Name: "blocklist", Key: "list.csv"},
				Format: fidov1.FormatCSV, CSV: &fidov1.CSVFormat{ValueColumn: 1, TypeColumn: ptr.To(int32(0)), HasHeader: true}}})
		tfWaitFor(t, fromCM, tfReady(metav1.ConditionFalse, fidov1.ReasonSyncFailed, "not found"))
		assertFeedGauges(t, fromCM, 0, 0)
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "blocklist"},
			Data: map[string]string{"list.csv": "type,value\nip-dst,198.51.100.9\nsha256,E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\n"}}
		tfCreate(t, cm)
		tfWaitFor(t, fromCM, tfAll(tfReady(metav1.ConditionTrue, fidov1.ReasonSynced, "2 indicators loaded"), tfCount(2)))

		cm.Data["list.csv"] = "type,value\nip-dst,198.51.100.10\n"
		if err := env.Client.Update(context.Background(), cm); err != nil {
			t.Fatal(err)
		}
		tfWaitFor(t, fromCM, tfAll(tfReady(metav1.ConditionTrue, fidov1.ReasonSynced, "1 indicators loaded"), tfCount(1)))
		if len(tfHits(index, "198.51.100.10")) != 1 || len(tfHits(index, "198.51.100.9")) != 0 {
			t.Error("index does not follow the ConfigMap")
		}
	})

	t.Run("secret source keeps values out of the status", func(t *testing.T) {
		tfCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "private-feed"},
			StringData: map[string]string{"feed": "private.example\nconfidential-token-xyz\n"}})
		tfCreate(t, &fidov1.ThreatFeed{ObjectMeta: metav1.ObjectMeta{Name: fromSecret},
			Spec: fidov1.ThreatFeedSpec{SecretRef: &fidov1.ObjectKeyRef{Namespace: ns, Name: "private-feed", Key: "feed"}}})
		feed := tfWaitFor(t, fromSecret, tfAll(tfReady(metav1.ConditionTrue, fidov1.ReasonSynced, "1 indicators loaded"), tfCount(1)))
		if feed.Status.InvalidEntries != 1 {
			t.Errorf("invalidEntries = %d, want 1", feed.Status.InvalidEntries)
		}
		tfAssertNoSecrets(t, feed, "confidential-token-xyz")
	})
}

func TestThreatFeedReloadsAfterRestart(t *testing.T) {
	ns := env.NewNamespace(t, nil)
	name := ns + "-restart"
	srv := tfServeFeed(t, "192.0.2.50\n192.0.2.51\n", `"same"`)
	tfCreate(t, &fidov1.ThreatFeed{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fidov1.ThreatFeedSpec{URL: srv.URL}})

	t.Run("first operator run", func(t *testing.T) {
		tfStart(t)
		tfWaitFor(t, name, tfAll(tfReady(metav1.ConditionTrue, fidov1.ReasonSynced, ""), tfCount(2), func(f *fidov1.ThreatFeed) error {
			if f.Status.ETag != `"same"` {
				return fmt.Errorf("etag = %q", f.Status.ETag)
			}
			return nil
		}))
	})
	t.Run("after a restart the empty index is filled with a full GET", func(t *testing.T) {
		fullBefore, _ := srv.counts()
		index := tfStart(t)
		testenv.Eventually(t, tfWait, func() error {
			if len(tfHits(index, "192.0.2.51")) != 1 {
				return fmt.Errorf("feed not loaded after the restart")
			}
			return nil
		})
		if full, _ := srv.counts(); full <= fullBefore {
			t.Errorf("no full GET after the restart (%d before, %d after)", fullBefore, full)
		}
	})
}

func TestThreatFeedStatusComputation(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC))
	earlier := metav1.NewTime(now.Add(-time.Hour))
	stats := intel.FeedStats{Count: 7, CountsByType: map[string]int64{"IP": 7}}
	good := intel.LoadResult{Report: intel.Report{Invalid: 2, Samples: []string{"line 3: junk"}}, Validators: intel.Validators{ETag: `"new"`}}
	tests := []struct {
		name          string
		out           outcome
		wantReady     metav1.ConditionStatus
		wantReason    string
		wantMessage   string
		wantOthers    string // the other conditions set, "Reconciling" or "Stalled"
		wantObserved  int64
		wantETag      string
		wantSynced    bool
		wantLastError string
	}{
		{name: "loaded", out: outcome{result: good}, wantReady: metav1.ConditionTrue, wantReason: fidov1.ReasonSynced,
			wantMessage: "7 indicators loaded", wantObserved: 3, wantETag: `"new"`, wantSynced: true},
		{name: "not modified keeps validators and report", out: outcome{result: intel.LoadResult{NotModified: true}}, wantReady: metav1.ConditionTrue,
			wantReason: fidov1.ReasonSynced, wantMessage: "7 indicators loaded", wantObserved: 3, wantETag: `"old"`, wantSynced: true},
		{name: "invalid spec stalls", out: outcome{err: &intel.SpecError{Err: fmt.Errorf("bad url")}}, wantReady: metav1.ConditionFalse,
			wantReason: fidov1.ReasonInvalidSpec, wantMessage: "bad url; keeping the 7 indicators loaded before", wantOthers: "Stalled",
			wantObserved: 3, wantETag: `"old"`, wantLastError: "bad url"},
		{name: "source error waits", out: outcome{err: &intel.SourceError{Err: fmt.Errorf("configmap x/y not found")}}, wantReady: metav1.ConditionFalse,
			wantReason: fidov1.ReasonSyncFailed, wantMessage: "configmap x/y not found; keeping", wantObserved: 2, wantETag: `"old"`,
			wantLastError: "configmap x/y not found"},
		{name: "transient error retries", out: outcome{err: fmt.Errorf("server answered 503")}, wantReady: metav1.ConditionFalse,
			wantReason: fidov1.ReasonSyncFailed, wantMessage: "server answered 503; keeping", wantOthers: "Reconciling", wantObserved: 2,
			wantETag: `"old"`, wantLastError: "server answered 503"},
		{name: "empty content keeps the old set", out: outcome{keptOld: true, result: good}, wantReady: metav1.ConditionFalse,
			wantReason: fidov1.ReasonSyncFailed, wantMessage: "no valid indicators (2 invalid entries); keeping the 7", wantObserved: 2,
			wantETag: `"old"`, wantLastError: "the feed has no valid indicators (2 invalid entries); keeping the 7 indicators loaded before"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			feed := &fidov1.ThreatFeed{ObjectMeta: metav1.ObjectMeta{Generation: 3},
				Status: fidov1.ThreatFeedStatus{ObservedGeneration: 2, ETag: `"old"`, LastSyncTime: &earlier}}
			computeStatus(feed, tt.out, stats, now)
			st := feed.Status
			ready := meta.FindStatusCondition(st.Conditions, fidov1.ConditionReady)
			if ready == nil || ready.Status != tt.wantReady || ready.Reason != tt.wantReason || !strings.Contains(ready.Message, tt.wantMessage) {
				t.Errorf("ready = %+v, want %s %s %q", ready, tt.wantReady, tt.wantReason, tt.wantMessage)
			}
			for _, typ := range []string{fidov1.ConditionReconciling, fidov1.ConditionStalled} {
				if got := meta.IsStatusConditionTrue(st.Conditions, typ); got != (typ == tt.wantOthers) {
					t.Errorf("%s = %v, want %v", typ, got, typ == tt.wantOthers)
				}
			}
			if st.ObservedGeneration != tt.wantObserved || st.ETag != tt.wantETag || st.LastError != tt.wantLastError {
				t.Errorf("observed %d etag %s lastError %q; want %d %s %q", st.ObservedGeneration, st.ETag, st.LastError, tt.wantObserved, tt.wantETag, tt.wantLastError)
			}
			if synced := st.LastSyncTime.Equal(&now); synced != tt.wantSynced {
				t.Errorf("lastSyncTime moved = %v, want %v", synced, tt.wantSynced)
			}
			if st.IndicatorCount != 7 || st.LastAttemptTime == nil || !st.LastAttemptTime.Equal(&now) {
				t.Errorf("count %d, lastAttempt %v", st.IndicatorCount, st.LastAttemptTime)
			}
		})
	}
}

func TestThreatFeedResult(t *testing.T) {
	feed := func(suspend bool, refresh time.Duration) *fidov1.ThreatFeed {
		f := &fidov1.ThreatFeed{Spec: fidov1.ThreatFeedSpec{Suspend: suspend}}
		if refresh != 0 {
			f.Spec.RefreshInterval = &metav1.Duration{Duration: refresh}
		}
		return f
	}
	transient := fmt.Errorf("dial tcp: connection refused")
	tests := []struct {
		name      string
		feed      *fidov1.ThreatFeed
		out       outcome
		wantAfter time.Duration
		wantErr   error
	}{
		{"synced, default refresh", feed(false, 0), outcome{}, time.Hour, nil},
		{"synced, custom refresh", feed(false, 5*time.Minute), outcome{}, 5 * time.Minute, nil},
		{"refresh floor", feed(false, time.Millisecond), outcome{}, time.Second, nil},
		{"suspended", feed(true, time.Minute), outcome{suspended: true}, 0, nil},
		{"spec error waits for a spec change", feed(false, time.Minute), outcome{err: &intel.SpecError{Err: transient}}, 0, nil},
		{"source error waits for the refresh", feed(false, time.Minute), outcome{err: &intel.SourceError{Err: transient}}, time.Minute, nil},
		{"transient error backs off", feed(false, time.Minute), outcome{err: transient}, 0, transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := result(tt.feed, tt.out)
			if res.RequeueAfter != tt.wantAfter || !errors.Is(err, tt.wantErr) {
				t.Errorf("got %v, %v; want %v, %v", res.RequeueAfter, err, tt.wantAfter, tt.wantErr)
			}
		})
	}
}

// assertFeedGauges checks the feed's metrics as a scrape would see them.
func assertFeedGauges(t *testing.T, name string, ready, indicators float64) {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "name" && l.GetValue() == name {
					got[f.GetName()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	if got["fido_threatfeed_ready"] != ready || got["fido_threatfeed_indicators"] != indicators || got["fido_threatfeed_refresh_interval_seconds"] <= 0 {
		t.Errorf("feed %s gauges %v, want ready %v with %v indicators", name, got, ready, indicators)
	}
	if _, synced := got["fido_threatfeed_last_sync_timestamp_seconds"]; synced != (ready == 1) {
		t.Errorf("feed %s: last sync time reported %v, want %v", name, synced, ready == 1)
	}
}
