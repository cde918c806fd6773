package enforce

import (
	"testing"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func TestMergeChanges(t *testing.T) {
	np := fidov1.Change{Operation: fidov1.ChangeCreated, Kind: "NetworkPolicy", Namespace: "a", Name: "x"}
	wouldNP := np
	wouldNP.Operation = fidov1.ChangeWouldCreate
	label := fidov1.Change{Operation: fidov1.ChangePatched, Kind: "Pod", Namespace: "a", Name: "p", Field: "metadata.labels[k]", Before: "null", After: `"v"`}
	relabel := label
	relabel.Before = `"v"`
	tests := []struct {
		name        string
		prior, next []fidov1.Change
		want        []string
		wantBefore  string
	}{
		{"empty prior", nil, []fidov1.Change{np, label}, []string{"Created NetworkPolicy ", "Patched Pod metadata.labels[k]"}, "null"},
		{"same change twice is kept once", []fidov1.Change{np}, []fidov1.Change{np}, []string{"Created NetworkPolicy "}, ""},
		{"would and real share a key", []fidov1.Change{wouldNP}, []fidov1.Change{np}, []string{"WouldCreate NetworkPolicy "}, ""},
		{"first before wins", []fidov1.Change{label}, []fidov1.Change{relabel}, []string{"Patched Pod metadata.labels[k]"}, "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MergeChanges(tt.prior, tt.next)
			if !equalStrings(ops(got), tt.want) {
				t.Fatalf("got %v, want %v", ops(got), tt.want)
			}
			for _, c := range got {
				if c.Kind == "Pod" && c.Before != tt.wantBefore {
					t.Errorf("before = %s, want %s", c.Before, tt.wantBefore)
				}
			}
		})
	}
}

func TestFinalizeChanges(t *testing.T) {
	planned := fidov1.Change{Operation: fidov1.ChangePatched, Kind: "Pod", Name: "p", Field: "metadata.labels[k]", Before: "null", After: `"v"`}
	sawDone := planned
	sawDone.Before = `"v"` // what a re-run sees after the first run changed it
	tests := []struct {
		name       string
		prior      []fidov1.Change
		planned    []PlannedChange
		want       []string
		wantBefore string
	}{
		{"fresh change is recorded", nil, []PlannedChange{{Change: planned}}, []string{"Patched Pod metadata.labels[k]"}, "null"},
		{"done before the action is not recorded", nil, []PlannedChange{{Change: sawDone, Done: true}}, []string{}, ""},
		{"planned at claim, done after a crash: real, with the planned before", []fidov1.Change{asWould(planned)},
			[]PlannedChange{{Change: sawDone, Done: true}}, []string{"Patched Pod metadata.labels[k]"}, "null"},
		{"recorded and re-run: not duplicated", []fidov1.Change{planned},
			[]PlannedChange{{Change: sawDone, Done: true}}, []string{"Patched Pod metadata.labels[k]"}, "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := finalizeChanges(tt.prior, tt.planned)
			if !equalStrings(ops(got), tt.want) {
				t.Fatalf("got %v, want %v", ops(got), tt.want)
			}
			if len(got) > 0 && got[0].Before != tt.wantBefore {
				t.Errorf("before = %s, want %s", got[0].Before, tt.wantBefore)
			}
		})
	}
}

func TestMetaFieldRoundTrip(t *testing.T) {
	for _, key := range []string{"app", "security.fido.dev/quarantine", "a.b/c-d"} {
		for _, m := range []string{fieldLabels, fieldAnnotations} {
			gotMap, gotKey, ok := parseMetaField(metaField(m, key))
			if !ok || gotMap != m || gotKey != key {
				t.Errorf("round trip of %s %s gave %s %s %v", m, key, gotMap, gotKey, ok)
			}
		}
	}
	if _, _, ok := parseMetaField("spec.replicas"); ok {
		t.Error("spec.replicas parsed as a label field")
	}
}

func TestCheckChangeLimits(t *testing.T) {
	many := make([]fidov1.Change, MaxChanges+1)
	if Classify(checkChangeLimits(many)) != ClassTerminal {
		t.Error("too many changes must be a terminal error")
	}
	big := []fidov1.Change{{Before: string(make([]byte, MaxChangeValue+1))}}
	if Classify(checkChangeLimits(big)) != ClassTerminal {
		t.Error("a too long value must be a terminal error")
	}
	if err := checkChangeLimits(many[:MaxChanges]); err != nil {
		t.Errorf("%d changes: %v", MaxChanges, err)
	}
}
