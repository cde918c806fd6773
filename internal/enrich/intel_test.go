package enrich

import (
	"context"
	"reflect"
	"testing"

	"github.com/fido-operator/fido/api/v1alpha1"
)

// listMatcher is a threat feed holding a fixed set of values; it records
// what it was asked.
type listMatcher struct {
	bad   map[string]bool
	asked []v1alpha1.Indicator
}

func (m *listMatcher) Match(inds []v1alpha1.Indicator) []v1alpha1.IntelHit {
	m.asked = inds
	var hits []v1alpha1.IntelHit
	for _, ind := range inds {
		if m.bad[ind.Value] {
			hits = append(hits, v1alpha1.IntelHit{Type: ind.Type, Value: ind.Value, Feed: "test", Confidence: 90})
		}
	}
	return hits
}

func TestIndicators(t *testing.T) {
	pod := &v1alpha1.PodInfo{Containers: []v1alpha1.ContainerInfo{
		{Name: "web", Image: "nginx:1.27", ImageID: "docker-pullable://nginx@sha256:aaa"},
		{Name: "sidecar", Image: "nginx:1.27", ImageID: "nginx@sha256:aaa"},
		{Name: "pending", Image: "miner:latest"},
	}}
	withIndicators := func(s v1alpha1.Subject, inds ...v1alpha1.Indicator) *v1alpha1.Incident {
		return &v1alpha1.Incident{Spec: v1alpha1.IncidentSpec{Subject: s, Indicators: inds}}
	}
	ip := func(v string) v1alpha1.Indicator { return v1alpha1.Indicator{Type: v1alpha1.IndicatorIP, Value: v} }
	image := func(v string) v1alpha1.Indicator { return v1alpha1.Indicator{Type: v1alpha1.IndicatorImage, Value: v} }
	tests := []struct {
		name string
		inc  *v1alpha1.Incident
		pod  *v1alpha1.PodInfo
		want []v1alpha1.Indicator
	}{
		{"reported only", withIndicators(v1alpha1.Subject{Kind: v1alpha1.SubjectPod}, ip("1.2.3.4"), ip("1.2.3.4"), ip(" ")), nil,
			[]v1alpha1.Indicator{ip("1.2.3.4")}},
		{"pod images and digests deduplicated", withIndicators(v1alpha1.Subject{Kind: v1alpha1.SubjectPod}, image("nginx:1.27")), pod,
			[]v1alpha1.Indicator{image("nginx:1.27"), image("nginx@sha256:aaa"), image("miner:latest")}},
		{"subject ip", withIndicators(v1alpha1.Subject{Kind: v1alpha1.SubjectIP, IP: "185.220.101.47"}, ip("185.220.101.47"), v1alpha1.Indicator{Type: v1alpha1.IndicatorDomain, Value: "evil.example"}), nil,
			[]v1alpha1.Indicator{ip("185.220.101.47"), {Type: v1alpha1.IndicatorDomain, Value: "evil.example"}}},
		{"same value, different type kept", withIndicators(v1alpha1.Subject{Kind: v1alpha1.SubjectIP, IP: "evil.example"}, v1alpha1.Indicator{Type: v1alpha1.IndicatorDomain, Value: "evil.example"}), nil,
			[]v1alpha1.Indicator{{Type: v1alpha1.IndicatorDomain, Value: "evil.example"}, ip("evil.example")}},
		{"nothing", withIndicators(v1alpha1.Subject{Kind: v1alpha1.SubjectUser, User: "alice"}), nil, nil},
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
	inc.Spec.Indicators = []v1alpha1.Indicator{{Type: v1alpha1.IndicatorIP, Value: "185.220.101.47"}, {Type: v1alpha1.IndicatorIP, Value: "10.0.0.1"}}
	pod := &v1alpha1.PodInfo{Containers: []v1alpha1.ContainerInfo{{Name: "web", Image: "miner:latest"}}}

	m := &listMatcher{bad: map[string]bool{"185.220.101.47": true, "miner:latest": true}}
	out := &v1alpha1.Enrichment{Pod: pod}
	if err := (&intelEnricher{matcher: m}).Enrich(context.Background(), &Input{Incident: inc}, out); err != nil {
		t.Fatalf("Enrich: %v", err)
	}
	want := []v1alpha1.IntelHit{
		{Type: v1alpha1.IndicatorIP, Value: "185.220.101.47", Feed: "test", Confidence: 90},
		{Type: v1alpha1.IndicatorImage, Value: "miner:latest", Feed: "test", Confidence: 90},
	}
	if !reflect.DeepEqual(out.Intel, want) {
		t.Errorf("intel = %v, want %v", out.Intel, want)
	}

	out = &v1alpha1.Enrichment{Pod: pod}
	if err := (&intelEnricher{}).Enrich(context.Background(), &Input{Incident: inc}, out); err != nil || out.Intel != nil {
		t.Errorf("nil matcher: intel = %v, err = %v; want nothing", out.Intel, err)
	}
}

func TestIntelHitsBounded(t *testing.T) {
	inc := podIncident("shop", "web-1")
	bad := map[string]bool{}
	for i := range MaxIntelHits + 10 {
		v := "10.0." + string(rune('0'+i/10)) + "." + string(rune('0'+i%10))
		inc.Spec.Indicators = append(inc.Spec.Indicators, v1alpha1.Indicator{Type: v1alpha1.IndicatorIP, Value: v})
		bad[v] = true
	}
	out := &v1alpha1.Enrichment{}
	if err := (&intelEnricher{matcher: &listMatcher{bad: bad}}).Enrich(context.Background(), &Input{Incident: inc}, out); err != nil {
		t.Fatalf("Enrich: %v", err)
	}
	if len(out.Intel) != MaxIntelHits {
		t.Errorf("intel hits = %d, want %d", len(out.Intel), MaxIntelHits)
	}
}
