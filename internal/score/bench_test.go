package score

import "testing"

// BenchmarkEvaluate scores a fully enriched incident with the 20-rule
// realistic policy: building the activation plus evaluating every rule.
// One op is one incident scored.
func BenchmarkEvaluate(b *testing.B) {
	p := mustCompile(b, realisticPolicy())
	inc := enrichedIncident()
	b.ReportAllocs()
	for b.Loop() {
		if res := p.Evaluate(inc); len(res.Score.Errors) > 0 {
			b.Fatalf("errors: %v", res.Score.Errors)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "incidents/s")
}

// BenchmarkCompile compiles the 20-rule realistic policy.
func BenchmarkCompile(b *testing.B) {
	policy := realisticPolicy()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(policy); err != nil {
			b.Fatal(err)
		}
	}
}
