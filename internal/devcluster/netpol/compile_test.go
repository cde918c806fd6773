package netpol

import (
	"context"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func pod(ns, name, ip string, lbl map[string]string, ports ...corev1.ContainerPort) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbl},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Ports: ports}}},
		Status:     corev1.PodStatus{PodIP: ip, Phase: corev1.PodRunning},
	}
}

func namespace(name string, lbl map[string]string) corev1.Namespace {
	all := map[string]string{"kubernetes.io/metadata.name": name}
	for k, v := range lbl {
		all[k] = v
	}
	return corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: all}}
}

func policy(ns string, sel map[string]string, spec networkingv1.NetworkPolicySpec) networkingv1.NetworkPolicy {
	spec.PodSelector = metav1.LabelSelector{MatchLabels: sel}
	return networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: spec}
}

var (
	tcp, udp = corev1.ProtocolTCP, corev1.ProtocolUDP
	hostile  = corev1.Protocol("tcp dport 1 accept } chain x { ")
	port53   = intstr.FromInt32(53)
	portHTTP = intstr.FromString("http")
)

// cluster has a victim and a client in prod, a pod in ops, and a
// host-network pod no policy can select.
func cluster(policies ...networkingv1.NetworkPolicy) Cluster {
	host := pod("prod", "host", "10.0.2.15", map[string]string{"app": "web"})
	host.Spec.HostNetwork = true
	return Cluster{
		Namespaces: []corev1.Namespace{namespace("prod", nil), namespace("ops", map[string]string{"team": "sec"})},
		Pods: []corev1.Pod{
			pod("prod", "victim", "10.244.0.5", map[string]string{"app": "web", "q": "1"},
				corev1.ContainerPort{Name: "http", ContainerPort: 8080}),
			pod("prod", "client", "10.244.0.6", map[string]string{"app": "client"}),
			pod("ops", "scanner", "10.244.0.9", map[string]string{"app": "scanner"}),
			host,
		},
		Policies: policies,
	}
}

func TestCompile(t *testing.T) {
	cases := []struct {
		name            string
		policy          networkingv1.NetworkPolicy
		ingress, egress map[string][]Allow
	}{{
		name: "quarantine denies both ways but DNS",
		policy: policy("prod", map[string]string{"q": "1"}, networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{
				{Protocol: &udp, Port: &port53}, {Protocol: &tcp, Port: &port53}}}},
		}),
		ingress: map[string][]Allow{"10.244.0.5": nil},
		egress: map[string][]Allow{"10.244.0.5": {{Ports: []Port{
			{Protocol: "UDP", Port: 53}, {Protocol: "TCP", Port: 53}}}}},
	}, {
		name: "ingress by default, from a pod selector and a namespace, named port on the destination",
		policy: policy("prod", map[string]string{"app": "web"}, networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{
					{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}},
					{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "sec"}}},
				},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &portHTTP}},
			}},
		}),
		ingress: map[string][]Allow{"10.244.0.5": {{
			Peers: []Peer{{CIDR: "10.244.0.6/32"}, {CIDR: "10.244.0.9/32"}},
			Ports: []Port{{Protocol: "TCP", Port: 8080}},
		}}},
		egress: map[string][]Allow{},
	}, {
		name: "egress to an IP block with an exception, and to a named port no pod has",
		policy: policy("prod", map[string]string{"app": "client"}, networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{
				{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.244.0.0/16", "fd00::/8"}}}}},
				{To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}, Ports: []networkingv1.NetworkPolicyPort{{Port: &portHTTP}}},
			},
		}),
		ingress: map[string][]Allow{},
		egress: map[string][]Allow{"10.244.0.6": {
			{Peers: []Peer{{CIDR: "10.0.0.0/8", Except: []string{"10.244.0.0/16"}}}},
			{Peers: []Peer{{CIDR: "10.244.0.5/32"}}, Ports: []Port{{Protocol: "TCP", Port: 8080}}},
		}},
	}, {
		name: "a selector peer that matches no pod allows nothing",
		policy: policy("prod", map[string]string{"q": "1"}, networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
				{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "nobody"}}}}}},
		}),
		ingress: map[string][]Allow{"10.244.0.5": nil},
		egress:  map[string][]Allow{},
	}, {
		name: "a protocol the API would refuse reaches no nft script",
		policy: policy("prod", map[string]string{"q": "1"}, networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &hostile}}}},
		}),
		ingress: map[string][]Allow{"10.244.0.5": nil},
		egress:  map[string][]Allow{},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := Compile(cluster(tc.policy))
			if !reflect.DeepEqual(rendered(rs.Ingress), rendered(tc.ingress)) {
				t.Errorf("ingress = %+v, want %+v", rs.Ingress, tc.ingress)
			}
			if !reflect.DeepEqual(rendered(rs.Egress), rendered(tc.egress)) {
				t.Errorf("egress = %+v, want %+v", rs.Egress, tc.egress)
			}
			checkScript(t, Render(rs))
		})
	}
}

// rendered is each pod's chain as nft text, so an isolated pod with no
// allows compares equal however it was built.
func rendered(m map[string][]Allow) map[string]string {
	out := map[string]string{}
	for ip, allows := range m {
		var b strings.Builder
		writeChain(&b, "c", "saddr", allows)
		out[ip] = b.String()
	}
	return out
}

func TestRenderQuarantine(t *testing.T) {
	rs := Ruleset{
		Ingress: map[string][]Allow{"10.244.0.5": nil},
		Egress:  map[string][]Allow{"10.244.0.5": {{Ports: []Port{{Protocol: "UDP", Port: 53}, {Protocol: "TCP", Port: 53}}}}},
	}
	got := Render(rs)
	for _, want := range []string{
		"ct state established,related accept",
		"ip saddr vmap { 10.244.0.5 : jump egress_0 }",
		"ip daddr vmap { 10.244.0.5 : jump ingress_0 }",
		"chain egress_0 {\n\t\tmeta l4proto tcp th dport { 53 } return\n\t\tmeta l4proto udp th dport { 53 } return\n\t\tdrop\n",
		"chain ingress_0 {\n\t\tdrop\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("script lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "hook input") != 1 || strings.Contains(got[strings.Index(got, "hook input"):strings.Index(got, "chain egress_0")], "daddr vmap") {
		t.Errorf("the input hook must filter only the pods' egress:\n%s", got)
	}
	checkScript(t, got)
	checkScript(t, Render(Ruleset{}))
}

// checkScript has nft parse and check the script without applying it,
// where this test may (root with nft installed).
func checkScript(t *testing.T, script string) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil || os.Geteuid() != 0 {
		return
	}
	if err := Apply(context.Background(), script, true); err != nil {
		t.Errorf("nft refuses the script: %v\n%s", err, script)
	}
}
