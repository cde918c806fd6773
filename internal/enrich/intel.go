package enrich

import (
	"context"
	"strings"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// intelEnricher looks the incident's indicators, the pod's images and the
// subject's address up in the threat feeds.
type intelEnricher struct{ matcher IntelMatcher }

func (*intelEnricher) Name() string { return "intel" }

func (e *intelEnricher) Enrich(_ context.Context, in *Input, out *fidov1.Enrichment) error {
	if e.matcher == nil {
		return nil
	}
	hits := e.matcher.Match(Indicators(in.Incident, out.Pod))
	if len(hits) > MaxIntelHits {
		hits = hits[:MaxIntelHits]
	}
	out.Intel = hits
	return nil
}

// Indicators gathers what to look up for an incident: its reported
// indicators, the images (and image digests) of its pod's containers and
// the subject's IP address, without duplicates, in that order.
func Indicators(inc *fidov1.Incident, pod *fidov1.PodInfo) []fidov1.Indicator {
	var list []fidov1.Indicator
	seen := map[fidov1.Indicator]bool{}
	add := func(t fidov1.IndicatorType, v string) {
		ind := fidov1.Indicator{Type: t, Value: strings.TrimSpace(v)}
		if ind.Value == "" || seen[ind] {
			return
		}
		seen[ind] = true
		list = append(list, ind)
	}
	for _, ind := range inc.Spec.Indicators {
		add(ind.Type, ind.Value)
	}
	if pod != nil {
		for _, c := range pod.Containers {
			add(fidov1.IndicatorImage, c.Image)
			add(fidov1.IndicatorImage, imageDigestRef(c.ImageID))
		}
	}
	add(fidov1.IndicatorIP, inc.Spec.Subject.IP)
	return list
}

// imageDigestRef drops the runtime's scheme ("docker-pullable://") from a
// kubelet image ID, leaving "repo@sha256:...".
func imageDigestRef(imageID string) string {
	if _, ref, ok := strings.Cut(imageID, "://"); ok {
		return ref
	}
	return imageID
}
