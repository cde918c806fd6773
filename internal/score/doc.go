// Package score is FIDO's pure scoring engine: it compiles the CEL rules of a
// ScoringPolicy, evaluates them against an enriched Incident, and explains the
// result as a v1alpha1.Score (sub-scores, contributions, per-rule errors, the
// tier reached and the actions it plans). It also decides which ScoringPolicy
// applies to an incident. Nothing here does I/O.
//
// A score is the base points of the detector priority (spec.priorityPoints,
// counted towards the threat sub-score) plus the points of every rule whose
// expression is true, summed per category (threat, asset, user). Each
// sub-score is clamped to 0..100 and the total, the sum of the sub-scores, is
// clamped to 0..100 as well. The incident gets the tier with the highest
// minScore the total reaches, and that tier's severity.
//
// Rule expressions see the variables described in [Variables]. Every field is
// always present, with its zero value when the enrichment lacks that part, and
// the field names are declared, so a typo such as enrichment.pod.privilegd is
// a compile error rather than a silent false.
package score

// Variables documents the CEL variables a rule expression can use. It is
// Markdown, ready to be copied into the README and the docs.
const Variables = "" +
	"Rule expressions are CEL and must evaluate to a bool. Four variables are declared; every\n" +
	"field below is always present, holding its zero value (`\"\"`, `0`, `false`, `[]`, `{}`) when\n" +
	"FIDO does not know it, so `enrichment.pod.privileged` is simply `false` for a Node incident.\n" +
	"Misspelt field names are rejected when the policy is compiled (Ready=False). Because every\n" +
	"field is present, `has(enrichment.pod.name)` is always true: test `enrichment.pod.name != \"\"`\n" +
	"to know whether the incident has a pod.\n" +
	"\n" +
	"| variable | fields |\n" +
	"| --- | --- |\n" +
	"| `incident` | `detector`, `rule`, `priority` (string, e.g. `\"Critical\"`), `priorityRank` (int: Emergency 7 … Debug 0, unknown -1), `summary`, `subject {kind, namespace, name, container, node, user, ip, groups}` (`groups`: the user's groups, from the audit log), `indicators` (list of `{type, value}`), `fields` (map(string, string) of raw detector fields) |\n" +
	"| `enrichment` | `pod {name, node, serviceAccount, phase, privileged, hostNetwork, hostPID, hostPath, runAsRoot, labels, images, containers}` where `images` is a list of strings and `containers` a list of `{name, image, imageID, privileged, runAsRoot}`; `workload {kind, name, replicas}`; `node {name, roles, labels, unschedulable}`; `serviceAccount {subject, bindings, clusterAdmin, readSecrets, execPods, createWorkloads, escalate}`; `exposure {services, ingresses, publicLoadBalancer, nodePort, ingress}`; `namespace {name, labels}`; `vulnerabilities {critical, high, medium, low, unknown, fixable, criticalIDs, reportAge, scanned, images}` from the Trivy Operator's VulnerabilityReports on the pod's images (counts by severity, `fixable` = with a fixed version, `criticalIDs` the first 10 critical CVE IDs sorted, `reportAge` a duration such as `duration(\"168h\")`, `scanned` false when no report covers the pod, `images` a list of `{container, image, critical, high, medium, low, unknown, fixable}`); `errors` (list of `{enricher, message}`) |\n" +
	"| `intel` | list of threat-feed hits `{type, value, matched, feed, confidence, severity, tags}` |\n" +
	"| `history` | `{subjectIncidents, workloadIncidents}`: earlier incidents of the same subject / workload |\n" +
	"\n" +
	"Available functions: the CEL standard library, the cel-go extension libraries `strings`\n" +
	"(e.g. `lowerAscii`, `split`), `sets` (`sets.contains`, `sets.intersects`), `lists`\n" +
	"(`distinct`, `flatten`, `sortBy`), two-variable comprehensions, optional values\n" +
	"(`m.?key.orValue(\"\")`), and network functions (`ip`, `cidr`, `isIP`,\n" +
	"`cidr(\"10.0.0.0/8\").containsIP(incident.subject.ip)`).\n" +
	"\n" +
	"Missing map keys: looking up a key that is absent (`enrichment.namespace.labels[\"env\"]`\n" +
	"when the namespace has no `env` label, or `incident.fields[\"proc.name\"]` when the detector\n" +
	"did not send it) makes the rule *not apply* to that incident: it adds no points and is not\n" +
	"reported as an error, because a missing label or field is normal, not a broken policy. CEL's\n" +
	"`||` and `&&` still absorb the missing key where the other side decides (`labels[\"env\"] ==\n" +
	"\"prod\" || enrichment.pod.privileged` matches a privileged pod without the label). Note that\n" +
	"`labels[\"env\"] != \"prod\"` therefore does *not* match when the label is missing; write\n" +
	"`enrichment.namespace.labels.?env.orValue(\"\") != \"prod\"` (or `!(\"env\" in labels) || ...`)\n" +
	"when an absent key should count.\n" +
	"\n" +
	"Every other runtime failure (division by zero, a list index out of range, a bad `ip()`\n" +
	"argument, the cost limit) is listed in `status.score.errors` for that incident; the rule adds\n" +
	"no points and the other rules still count.\n" +
	"\n" +
	"Limits: an expression may be at most 4096 characters and nest at most 32 levels. Its\n" +
	"worst-case cost, estimated at compile time from the sizes of the inputs (64 indicators,\n" +
	"fields and intel hits and 10 critical IDs, as the API allows; 256 entries for other lists\n" +
	"and maps), must stay under 1000000 CEL cost units. An expression estimated above 5000\n" +
	"units (typically a loop inside a loop) is also metered while it runs and fails for that\n" +
	"incident when it exceeds 1000000 units.\n"
