package score

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fido-operator/fido/api/v1alpha1"
)

// enrichedIncident is a realistic Falco incident on a production pod, with
// every enrichment part filled in.
func enrichedIncident() *v1alpha1.Incident {
	replicas := int32(3)
	return &v1alpha1.Incident{
		ObjectMeta: metav1.ObjectMeta{Name: "falco-terminal-shell-6d2c1f", Namespace: "shop"},
		Spec: v1alpha1.IncidentSpec{
			Detector: "falco",
			Rule:     "Terminal shell in container",
			Priority: v1alpha1.PriorityCritical,
			Summary:  "A shell was spawned in a container with an attached terminal (user=root shell=bash)",
			Subject: v1alpha1.Subject{
				Kind: v1alpha1.SubjectPod, Namespace: "shop", Name: "web-1", Container: "web",
				Node: "node-a", User: "root", IP: "10.0.3.7",
			},
			Indicators: []v1alpha1.Indicator{
				{Type: v1alpha1.IndicatorIP, Value: "185.220.101.47"},
				{Type: v1alpha1.IndicatorDomain, Value: "evil.example.org"},
			},
			Fields: map[string]v1alpha1.FieldValue{
				"proc.name":    "bash",
				"proc.cmdline": "bash -i",
				"user.name":    "root",
				"container.id": "0123456789ab",
			},
		},
		Status: v1alpha1.IncidentStatus{Enrichment: &v1alpha1.Enrichment{
			Pod: &v1alpha1.PodInfo{
				Name: "web-1", Node: "node-a", ServiceAccount: "web", Phase: "Running",
				Privileged: true, HostNetwork: true, HostPID: true, HostPath: true, RunAsRoot: true,
				Labels: map[string]string{"app": "web", "tier": "frontend"},
				Containers: []v1alpha1.ContainerInfo{
					{Name: "web", Image: "docker.io/shop/web:latest", ImageID: "sha256:abc", Privileged: true, RunAsRoot: true},
					{Name: "sidecar", Image: "ghcr.io/shop/proxy:1.2"},
				},
			},
			Workload: &v1alpha1.WorkloadInfo{Kind: "Deployment", Name: "web", Replicas: &replicas},
			Node: &v1alpha1.NodeInfo{
				Name: "node-a", Roles: []string{"worker"},
				Labels: map[string]string{"topology.kubernetes.io/zone": "eu-1a"}, Unschedulable: true,
			},
			ServiceAccount: &v1alpha1.AccessInfo{
				Subject: "system:serviceaccount:shop:web", Bindings: []string{"ClusterRoleBinding//web-admin"},
				ClusterAdmin: true, ReadSecrets: true, ExecPods: true, CreateWorkloads: true, Escalate: true,
			},
			Exposure: &v1alpha1.ExposureInfo{
				Services: []string{"shop/web"}, Ingresses: []string{"shop/web"},
				PublicLoadBalancer: true, NodePort: true, Ingress: true,
			},
			Namespace: &v1alpha1.NamespaceInfo{Name: "shop", Labels: map[string]string{"env": "prod", "team": "shop"}},
			History:   &v1alpha1.HistoryInfo{SubjectIncidents: 3, WorkloadIncidents: 5},
			Intel: []v1alpha1.IntelHit{
				{
					Type: v1alpha1.IndicatorIP, Value: "185.220.101.47", Matched: "185.220.101.0/24", Feed: "tor-exits",
					Confidence: 90, Severity: v1alpha1.SeverityHigh, Tags: []string{"tor", "anonymizer"},
				},
			},
			Errors: []v1alpha1.EnricherError{{Enricher: "exposure", Message: "ingress list timed out"}},
		}},
	}
}

// bareIncident is a Node incident with no enrichment at all.
func bareIncident() *v1alpha1.Incident {
	return &v1alpha1.Incident{
		ObjectMeta: metav1.ObjectMeta{Name: "alertmanager-node-down", Namespace: "fido-system"},
		Spec: v1alpha1.IncidentSpec{
			Detector: "alertmanager",
			Rule:     "NodeDown",
			Priority: v1alpha1.PriorityWarning,
			Subject:  v1alpha1.Subject{Kind: v1alpha1.SubjectNode, Name: "node-b"},
		},
	}
}

// rule is shorthand for a ScoringRule.
func rule(name string, category v1alpha1.RuleCategory, points int32, expression string) v1alpha1.ScoringRule {
	return v1alpha1.ScoringRule{Name: name, Category: category, Points: points, Expression: expression}
}

// defaultTiers are the tiers of the architecture's example policy.
func defaultTiers() []v1alpha1.Tier {
	return []v1alpha1.Tier{
		{Name: "contain", MinScore: 80, Severity: v1alpha1.SeverityCritical, Actions: []v1alpha1.ActionTemplate{
			{ActionParameters: v1alpha1.ActionParameters{Type: v1alpha1.ActionIsolatePod}},
			{ActionParameters: v1alpha1.ActionParameters{Type: v1alpha1.ActionDisableServiceAccount, RequireApproval: true}},
			{ActionParameters: v1alpha1.ActionParameters{Type: v1alpha1.ActionNotify}},
		}},
		{Name: "investigate", MinScore: 50, Severity: v1alpha1.SeverityHigh, Actions: []v1alpha1.ActionTemplate{
			{ActionParameters: v1alpha1.ActionParameters{Type: v1alpha1.ActionNotify}},
		}},
		{Name: "record", MinScore: 0, Severity: v1alpha1.SeverityLow},
	}
}

// newPolicy builds a policy in fido-system with the default tiers.
func newPolicy(rules ...v1alpha1.ScoringRule) *v1alpha1.ScoringPolicy {
	return &v1alpha1.ScoringPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "fido-system", Generation: 7},
		Spec: v1alpha1.ScoringPolicySpec{
			Mode:  v1alpha1.ModeEnforce,
			Rules: rules,
			Tiers: defaultTiers(),
		},
	}
}

// mustCompile compiles or fails the test.
func mustCompile(t testing.TB, p *v1alpha1.ScoringPolicy) *Policy {
	t.Helper()
	compiled, err := Compile(p)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return compiled
}

// realisticPolicy is a 20-rule policy like the ones users write.
func realisticPolicy() *v1alpha1.ScoringPolicy {
	p := newPolicy(
		rule("known-bad-indicator", v1alpha1.CategoryThreat, 40, `intel.exists(h, h.confidence >= 80)`),
		rule("tor-exit", v1alpha1.CategoryThreat, 10, `intel.exists(h, "tor" in h.tags)`),
		rule("repeat-offender", v1alpha1.CategoryThreat, 15, `history.subjectIncidents >= 2`),
		rule("noisy-workload", v1alpha1.CategoryThreat, 5, `history.workloadIncidents > 10`),
		rule("interactive-shell", v1alpha1.CategoryThreat, 10, `incident.fields[?"proc.cmdline"].orValue("").contains("-i")`),
		rule("shell-summary", v1alpha1.CategoryThreat, 5, `incident.summary.lowerAscii().contains("shell")`),
		rule("external-ip", v1alpha1.CategoryThreat, 5, `incident.indicators.exists(i, i.type == "IP" && !cidr("10.0.0.0/8").containsIP(i.value))`),
		rule("production", v1alpha1.CategoryAsset, 20, `enrichment.namespace.labels["env"] == "prod"`),
		rule("internet-exposed", v1alpha1.CategoryAsset, 15, `enrichment.exposure.publicLoadBalancer || enrichment.exposure.ingress`),
		rule("privileged-pod", v1alpha1.CategoryAsset, 15, `enrichment.pod.privileged`),
		rule("host-access", v1alpha1.CategoryAsset, 10, `enrichment.pod.hostNetwork || enrichment.pod.hostPID || enrichment.pod.hostPath`),
		rule("latest-image", v1alpha1.CategoryAsset, 5, `enrichment.pod.images.exists(i, i.endsWith(":latest"))`),
		rule("control-plane", v1alpha1.CategoryAsset, 25, `"control-plane" in enrichment.node.roles`),
		rule("replicated", v1alpha1.CategoryAsset, -5, `enrichment.workload.replicas > 2`),
		rule("dev-namespace", v1alpha1.CategoryAsset, -20, `enrichment.namespace.labels.?env.orValue("") == "dev"`),
		rule("cluster-admin", v1alpha1.CategoryUser, 30, `enrichment.serviceAccount.clusterAdmin`),
		rule("reads-secrets", v1alpha1.CategoryUser, 15, `enrichment.serviceAccount.readSecrets`),
		rule("can-escalate", v1alpha1.CategoryUser, 20, `enrichment.serviceAccount.escalate || enrichment.serviceAccount.createWorkloads`),
		rule("root-user", v1alpha1.CategoryUser, 10, `incident.subject.user == "root" || enrichment.pod.runAsRoot`),
		rule("system-account", v1alpha1.CategoryUser, -10, `enrichment.serviceAccount.subject.startsWith("system:serviceaccount:kube-system:")`),
	)
	p.Spec.PriorityPoints = v1alpha1.PriorityPoints{Emergency: 60, Alert: 50, Critical: 40, Error: 25, Warning: 15, Notice: 10}
	return p
}
