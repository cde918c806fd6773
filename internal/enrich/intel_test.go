package enrich

import (
	"context"
	"reflect"
	"testing"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// listMatcher is a threat feed holding a fixed set of values; it records
// what it was asked.
type listMatcher struct {
	bad   map[string]bool
	asked []fidov1.Indicator
}

func (m *listMatcher) Match(inds []fidov1.Indicator) []fidov1.IntelHit {
	m.asked = inds
	var hits []fidov1.IntelHit
	for _, ind := range inds {
		if m.bad[ind.Value] {
			hits = append(hits, fidov1.IntelHit{Type: ind.Type, Value: ind.Value, Feed: "test", Confidence: 90})
		}
	}
	return hits
}

func TestIndicators(t *testing.T) {
	pod := &fidov1.PodInfo{Containers: []fidov1.ContainerInfo{
		{Name: "web", Image: "nginx:1.27", ImageID: "docker-pullable://nginx@sha256:aaa"},
		{Name: "sidecar", Image: "nginx:1.27", ImageID: "nginx@sha256:aaa"},
		{Name: "pending", Image: "miner:latest"},
	}}
	withIndicators := func(s fidov1.Subject, inds ...fidov1.Indicator) *fidov1.Incident {
		return &fidov1.Incident{Spec: fidov1.IncidentSpec{Subject: s, Indicators: inds}}
	}
	ip := func(v string) fidov1.Indicator { return fidov1.Indicator{Type: fidov1.IndicatorIP, Value: v} }
	image := func(v string) fidov1.Indicator { return fidov1.Indicator{Type: fidov1.IndicatorImage, Value: v} }
	tests := []struct {
		name string
		inc  *fidov1.Incident
		pod  *fidov1.PodInfo
		want []fidov1.Indicator
	}{
		{"reported only", withIndicators(fidov1.Subject{Kind: fidov1.SubjectPod}, ip("1.2.3.4"), ip("1.2.3.4"), ip(" ")), nil,
			[]fidov1.Indicator{ip("1.2.3.4")}},
		{"pod images and digests deduplicated", withIndicators(fidov1.Subject{Kind: fidov1.SubjectPod}, image("nginx:1.27")), pod,
			[]fidov1.Indicator{image("nginx:1.27"), image("nginx@sha256:aaa"), image("miner:latest")}},
		{"subject ip", withIndicators(fidov1.Subject{Kind: fidov1.SubjectIP, IP: "185.220.101.47"}, ip("185.220.101.47"), fidov1.Indicator{Type: fidov1.IndicatorDomain, Value: "evil.example"}), nil,
			[]fidov1.Indicator{ip("185.220.101.47"), {Type: fidov1.IndicatorDomain, Value: "evil.example"}}},
		{"same value, different type kept", withIndicators(fidov1.Subject{Kind: fidov1.SubjectIP, IP: "evil.example"}, fidov1.Indicator{Type: fidov1.IndicatorDomain, Value: "evil.example"}), nil,
			[]fidov1.Indicator{{Type: fidov1.IndicatorDomain, Value: "evil.example"}, ip("evil.example")}},
		{"nothing", withIndicators(fidov1.Subject{Kind: fidov1.SubjectUser, User: "alice"}), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Indicators(tt.inc, tt.pod); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Indicators = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIntelEnricher(t *testing.T) {
	inc := podIncident("shop", "web-1")
	inc.Spec.Indicators = []fidov1.Indicator{{Type: fidov1.IndicatorIP, Value: "185.220.101.47"}, {Type: fidov1.IndicatorIP, Value: "10.0.0.1"}}
	pod := &fidov1.PodInfo{Containers: []fidov1.ContainerInfo{{Name: "web", Image: "miner:latest"}}}

	m := &listMatcher{bad: map[string]bool{"185.220.101.47": true, "miner:latest": true}}
	out := &fidov1.Enrichment{Pod: pod}
	if err := (&intelEnricher{matcher: m}).Enrich(context.Background(), &Input{Incident: inc}, out); err != nil {
		t.Fatalf("Enrich: %v", err)
	}
	want := []fidov1.IntelHit{
		{Type: fidov1.IndicatorIP, Value: "185.220.101.47", Feed: "test", Confidence: 90},
		{Type: fidov1.IndicatorImage, Value: "miner:latest", Feed: "test", Confidence: 90},
	}
	if !reflect.DeepEqual(out.Intel, want) {
		t.Errorf("intel = %v, want %v", out.Intel, want)
	}

	out = &fidov1.Enrichment{Pod: pod}
	if err := (&intelEnricher{}).Enrich(context.Background(), &Input{Incident: inc}, out); err != nil || out.Intel != nil {
		t.Errorf("nil matcher: intel = %v, err = %v; want nothing", out.Intel, err)
	}
}

func TestIntelHitsBounded(t *testing.T) {
	inc := podIncident("shop", "web-1")
	bad := map[string]bool{}
	for i := range MaxIntelHits + 10 {
		v := "10.0." + string(rune('0'+i/10)) + "." + string(rune('0'+i%10))
		inc.Spec.Indicators = append(inc.Spec.Indicators, fidov1.Indicator{Type: fidov1.IndicatorIP, Value: v})
		bad[v] = true
	}
	out := &fidov1.Enrichment{}
	if err := (&intelEnricher{matcher: &listMatcher{bad: bad}}).Enrich(context.Background(), &Input{Incident: inc}, out); err != nil {
		t.Fatalf("Enrich: %v", err)
	}
	if len(out.Intel) != MaxIntelHits {
		t.Errorf("intel hits = %d, want %d", len(out.Intel), MaxIntelHits)
	}
}
