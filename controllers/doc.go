// Package controllers holds one reconciler per FIDO kind: Incident
// (enrich, score, plan), ScoringPolicy (compile, report), ResponseAction
// (guard, approve, apply, verify, revert) and ThreatFeed (fetch, parse, index).
package controllers
