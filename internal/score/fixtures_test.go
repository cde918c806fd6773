package score

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// enrichedIncident is a realistic Falco incident on a production pod, with
// every enrichment part filled in.
func enrichedIncident() *fidov1.Incident {
	replicas := int32(3)
	return &fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{Name: "falco-terminal-shell-6d2c1f", Namespace: "shop"},
		Spec: fidov1.IncidentSpec{
			Detector: "falco",
			Rule:     "Terminal shell in container",
			Priority: fidov1.PriorityCritical,
			Summary:  "A shell was spawned in a container with an attached terminal (user=root shell=bash)",
			Subject: fidov1.Subject{
				Kind: fidov1.SubjectPod, Namespace: "shop", Name: "web-1", Container: "web",
				Node: "node-a", User: "root", IP: "10.0.3.7",
			},
			Indicators: []fidov1.Indicator{
				{Type: fidov1.IndicatorIP, Value: "185.220.101.47"},
				{Type: fidov1.IndicatorDomain, Value: "evil.example.org"},
			},
			Fields: map[string]fidov1.FieldValue{
				"proc.name":    "bash",
				"proc.cmdline": "bash -i",
				"user.name":    "root",
				"container.id": "0123456789ab",
			},
		},
		Status: fidov1.IncidentStatus{Enrichment: &fidov1.Enrichment{
			Pod: &fidov1.PodInfo{
				Name: "web-1", Node: "node-a", ServiceAccount: "web", Phase: "Running",
				Privileged: true, HostNetwork: true, HostPID: true, HostPath: true, RunAsRoot: true,
				Labels: map[string]string{"app": "web", "tier": "frontend"},
				Containers: []fidov1.ContainerInfo{
					{Name: "web", Image: "docker.io/shop/web:latest", ImageID: "sha256:abc", Privileged: true, RunAsRoot: true},
					{Name: "sidecar", Image: "ghcr.io/shop/proxy:1.2"},
				},
			},
			Workload: &fidov1.WorkloadInfo{Kind: "Deployment", Name: "web", Replicas: &replicas},
			Node: &fidov1.NodeInfo{
				Name: "node-a", Roles: []string{"worker"},
				Labels: map[string]string{"topology.kubernetes.io/zone": "eu-1a"}, Unschedulable: true,
			},
			ServiceAccount: &fidov1.AccessInfo{
				Subject: "system:serviceaccount:shop:web", Bindings: []string{"ClusterRoleBinding//web-admin"},
				ClusterAdmin: true, ReadSecrets: true, ExecPods: true, CreateWorkloads: true, Escalate: true,
			},
			Exposure: &fidov1.ExposureInfo{
				Services: []string{"shop/web"}, Ingresses: []string{"shop/web"},
				PublicLoadBalancer: true, NodePort: true, Ingress: true,
			},
			Namespace: &fidov1.NamespaceInfo{Name: "shop", Labels: map[string]string{"env": "prod", "team": "shop"}},
			Vulnerabilities: &fidov1.VulnerabilityInfo{
				Critical: 2, High: 7, Medium: 12, Low: 30, Unknown: 1, Fixable: 40,
				CriticalIDs: []string{"CVE-2024-3094", "CVE-2024-6387"},
				ReportAge:   metav1.Duration{Duration: 50 * time.Hour},
				Images: []fidov1.ImageVulnerabilities{
					{Container: "sidecar", Image: "ghcr.io/shop/proxy:1.2", Report: "replicaset-web-5d8f-sidecar", High: 1},
					{
						Container: "web", Image: "docker.io/shop/web:latest", Report: "replicaset-web-5d8f-web",
						Critical: 2, High: 6, Medium: 12, Low: 30, Unknown: 1, Fixable: 40,
					},
				},
			},
			History: &fidov1.HistoryInfo{SubjectIncidents: 3, WorkloadIncidents: 5},
			Intel: []fidov1.IntelHit{
				{
					Type: fidov1.IndicatorIP, Value: "185.220.101.47", Matched: "185.220.101.0/24", Feed: "tor-exits",
					Confidence: 90, Severity: fidov1.SeverityHigh, Tags: []string{"tor", "anonymizer"},
				},
			},
			Errors: []fidov1.EnricherError{{Enricher: "exposure", Message: "ingress list timed out"}},
		}},
	}
}

// bareIncident is a Node incident with no enrichment at all.
func bareIncident() *fidov1.Incident {
	return &fidov1.Incident{
		ObjectMeta: metav1.ObjectMeta{Name: "alertmanager-node-down", Namespace: "fido-system"},
		Spec: fidov1.IncidentSpec{
			Detector: "alertmanager",
			Rule:     "NodeDown",
			Priority: fidov1.PriorityWarning,
			Subject:  fidov1.Subject{Kind: fidov1.SubjectNode, Name: "node-b"},
		},
	}
}

// rule is shorthand for a ScoringRule.
func rule(name string, category fidov1.RuleCategory, points int32, expression string) fidov1.ScoringRule {
	return fidov1.ScoringRule{Name: name, Category: category, Points: points, Expression: expression}
}

// defaultTiers are the tiers of the architecture's example policy.
func defaultTiers() []fidov1.Tier {
	return []fidov1.Tier{
		{Name: "contain", MinScore: 80, Severity: fidov1.SeverityCritical, Actions: []fidov1.ActionTemplate{
			{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionIsolatePod}},
			{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionDisableServiceAccount, RequireApproval: true}},
			{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionNotify}},
		}},
		{Name: "investigate", MinScore: 50, Severity: fidov1.SeverityHigh, Actions: []fidov1.ActionTemplate{
			{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionNotify}},
		}},
		{Name: "record", MinScore: 0, Severity: fidov1.SeverityLow},
	}
}

// newPolicy builds a policy in fido-system with the default tiers.
func newPolicy(rules ...fidov1.ScoringRule) *fidov1.ScoringPolicy {
	return &fidov1.ScoringPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "fido-system", Generation: 7},
		Spec: fidov1.ScoringPolicySpec{
			Mode:  fidov1.ModeEnforce,
			Rules: rules,
			Tiers: defaultTiers(),
		},
	}
}

// mustCompile compiles or fails the test.
func mustCompile(t testing.TB, p *fidov1.ScoringPolicy) *Policy {
	t.Helper()
	compiled, err := Compile(p)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return compiled
}

// realisticPolicy is a 20-rule policy like the ones users write.
func realisticPolicy() *fidov1.ScoringPolicy {
	p := newPolicy(
		rule("known-bad-indicator", fidov1.CategoryThreat, 40, `intel.exists(h, h.confidence >= 80)`),
		rule("tor-exit", fidov1.CategoryThreat, 10, `intel.exists(h, "tor" in h.tags)`),
		rule("repeat-offender", fidov1.CategoryThreat, 15, `history.subjectIncidents >= 2`),
		rule("noisy-workload", fidov1.CategoryThreat, 5, `history.workloadIncidents > 10`),
		rule("interactive-shell", fidov1.CategoryThreat, 10, `incident.fields[?"proc.cmdline"].orValue("").contains("-i")`),
		rule("shell-summary", fidov1.CategoryThreat, 5, `incident.summary.lowerAscii().contains("shell")`),
		rule("external-ip", fidov1.CategoryThreat, 5, `incident.indicators.exists(i, i.type == "IP" && !cidr("10.0.0.0/8").containsIP(i.value))`),
		rule("production", fidov1.CategoryAsset, 20, `enrichment.namespace.labels["env"] == "prod"`),
		rule("internet-exposed", fidov1.CategoryAsset, 15, `enrichment.exposure.publicLoadBalancer || enrichment.exposure.ingress`),
		rule("privileged-pod", fidov1.CategoryAsset, 15, `enrichment.pod.privileged`),
		rule("host-access", fidov1.CategoryAsset, 10, `enrichment.pod.hostNetwork || enrichment.pod.hostPID || enrichment.pod.hostPath`),
		rule("latest-image", fidov1.CategoryAsset, 5, `enrichment.pod.images.exists(i, i.endsWith(":latest"))`),
		rule("control-plane", fidov1.CategoryAsset, 25, `"control-plane" in enrichment.node.roles`),
		rule("replicated", fidov1.CategoryAsset, -5, `enrichment.workload.replicas > 2`),
		rule("dev-namespace", fidov1.CategoryAsset, -20, `enrichment.namespace.labels.?env.orValue("") == "dev"`),
		rule("cluster-admin", fidov1.CategoryUser, 30, `enrichment.serviceAccount.clusterAdmin`),
		rule("reads-secrets", fidov1.CategoryUser, 15, `enrichment.serviceAccount.readSecrets`),
		rule("can-escalate", fidov1.CategoryUser, 20, `enrichment.serviceAccount.escalate || enrichment.serviceAccount.createWorkloads`),
		rule("root-user", fidov1.CategoryUser, 10, `incident.subject.user == "root" || enrichment.pod.runAsRoot`),
		rule("system-account", fidov1.CategoryUser, -10, `enrichment.serviceAccount.subject.startsWith("system:serviceaccount:kube-system:")`),
	)
	p.Spec.PriorityPoints = fidov1.PriorityPoints{Emergency: 60, Alert: 50, Critical: 40, Error: 25, Warning: 15, Notice: 10}
	return p
}
