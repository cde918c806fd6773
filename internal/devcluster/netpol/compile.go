// Package netpol is the dev node's NetworkPolicy enforcer: it compiles the
// cluster's NetworkPolicies, Pods and Namespaces into one nftables table and
// keeps that table in step with the API server.
//
// It exists because the suggested enforcer, kube-network-policies, sends
// packets to user space with the nftables `queue` statement, which the
// kernels of these machines are built without (CONFIG_NFT_QUEUE). This one
// needs only nf_tables, conntrack and br_netfilter. It is the dev node's,
// not a product: IPv4 only, one node, no AdminNetworkPolicy.
//
// Semantics are those of networking.k8s.io/v1: a pod selected by a policy
// of type Ingress (Egress) accepts (sends) only what one of the selecting
// policies' rules allows; replies of allowed connections pass (conntrack);
// traffic from the node to its pods always passes (kubelet probes).
package netpol

import (
	"net"
	"sort"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Ruleset is what the node enforces: per isolated pod IP, the traffic
// allowed in and out.
type Ruleset struct {
	// Ingress maps an ingress-isolated pod's IP to what may reach it.
	Ingress map[string][]Allow
	// Egress maps an egress-isolated pod's IP to what it may reach.
	Egress map[string][]Allow
}

// Allow is one allowed flow: from (or to) Peers, on Ports.
type Allow struct {
	// Peers are the other side's addresses; nil means any address.
	Peers []Peer
	// Ports are the destination ports; nil means every port and protocol.
	Ports []Port
}

// Peer is one IPv4 address or CIDR, less the CIDRs in Except.
type Peer struct {
	CIDR   string
	Except []string
}

// Port is a protocol with a destination port range; Port 0 means every
// port of the protocol.
type Port struct {
	Protocol string
	Port     int32
	EndPort  int32
}

// Cluster is what Compile reads.
type Cluster struct {
	Pods       []corev1.Pod
	Namespaces []corev1.Namespace
	Policies   []networkingv1.NetworkPolicy
}

// Compile computes the ruleset the cluster's policies ask for.
func Compile(c Cluster) Ruleset {
	rs := Ruleset{Ingress: map[string][]Allow{}, Egress: map[string][]Allow{}}
	nsLabels := map[string]labels.Set{}
	for _, ns := range c.Namespaces {
		nsLabels[ns.Name] = ns.Labels
	}
	pods := runningPods(c.Pods)
	for i := range c.Policies {
		np := &c.Policies[i]
		ingress, egress := policyTypes(np)
		for _, pod := range selectPods(pods, np.Namespace, &np.Spec.PodSelector) {
			ip := pod.Status.PodIP
			if ingress {
				rs.Ingress[ip] = append(rs.Ingress[ip], ingressAllows(np, pod, pods, nsLabels)...)
			}
			if egress {
				rs.Egress[ip] = append(rs.Egress[ip], egressAllows(np, pods, nsLabels)...)
			}
		}
	}
	return rs
}

// policyTypes says which directions the policy isolates, defaulted as the
// API documents: Ingress always, Egress when it has egress rules.
func policyTypes(np *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(np.Spec.PolicyTypes) == 0 {
		return true, len(np.Spec.Egress) > 0
	}
	for _, t := range np.Spec.PolicyTypes {
		ingress = ingress || t == networkingv1.PolicyTypeIngress
		egress = egress || t == networkingv1.PolicyTypeEgress
	}
	return ingress, egress
}

// runningPods are the pods with an IPv4 pod-network address, sorted so the
// ruleset is the same for the same cluster.
func runningPods(all []corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for i := range all {
		p := &all[i]
		ip := net.ParseIP(p.Status.PodIP)
		if p.Spec.HostNetwork || ip == nil || ip.To4() == nil ||
			p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Status.PodIP < out[j].Status.PodIP })
	return out
}

// selectPods are the pods of namespace the selector matches; an invalid
// selector matches nothing.
func selectPods(pods []*corev1.Pod, namespace string, sel *metav1.LabelSelector) []*corev1.Pod {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return nil
	}
	var out []*corev1.Pod
	for _, p := range pods {
		if p.Namespace == namespace && s.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out
}

// ingressAllows are the policy's ingress rules for one selected pod (its
// named ports resolve on that pod).
func ingressAllows(np *networkingv1.NetworkPolicy, dst *corev1.Pod, pods []*corev1.Pod, ns map[string]labels.Set) []Allow {
	var out []Allow
	for _, r := range np.Spec.Ingress {
		ports, ok := resolvePorts(r.Ports, dst)
		if !ok {
			continue
		}
		if len(r.From) == 0 {
			out = append(out, Allow{Ports: ports})
			continue
		}
		if peers := peerAddresses(r.From, np.Namespace, pods, ns); len(peers) > 0 {
			out = append(out, Allow{Peers: peers, Ports: ports})
		}
	}
	return out
}

// egressAllows are the policy's egress rules. A named port resolves on each
// destination pod, so a rule with one becomes one Allow per such pod.
func egressAllows(np *networkingv1.NetworkPolicy, pods []*corev1.Pod, ns map[string]labels.Set) []Allow {
	var out []Allow
	for _, r := range np.Spec.Egress {
		if !hasNamedPort(r.Ports) {
			ports, _ := resolvePorts(r.Ports, nil)
			if len(r.To) == 0 {
				out = append(out, Allow{Ports: ports})
			} else if peers := peerAddresses(r.To, np.Namespace, pods, ns); len(peers) > 0 {
				out = append(out, Allow{Peers: peers, Ports: ports})
			}
			continue
		}
		for _, dst := range peerPods(r.To, np.Namespace, pods, ns) {
			if ports, ok := resolvePorts(r.Ports, dst); ok {
				out = append(out, Allow{Peers: []Peer{{CIDR: dst.Status.PodIP + "/32"}}, Ports: ports})
			}
		}
	}
	return out
}

// peerAddresses are the addresses of a rule's peers: the selected pods'
// IPs and the IPv4 IP blocks.
func peerAddresses(peers []networkingv1.NetworkPolicyPeer, namespace string, pods []*corev1.Pod, ns map[string]labels.Set) []Peer {
	var out []Peer
	for _, p := range peerPods(peers, namespace, pods, ns) {
		out = append(out, Peer{CIDR: p.Status.PodIP + "/32"})
	}
	for _, peer := range peers {
		if b := peer.IPBlock; b != nil && isIPv4CIDR(b.CIDR) {
			out = append(out, Peer{CIDR: b.CIDR, Except: ipv4Only(b.Except)})
		}
	}
	return out
}

// peerPods are the pods the rule's selector peers match, once each.
func peerPods(peers []networkingv1.NetworkPolicyPeer, namespace string, pods []*corev1.Pod, ns map[string]labels.Set) []*corev1.Pod {
	seen := map[*corev1.Pod]bool{}
	var out []*corev1.Pod
	for _, peer := range peers {
		if peer.IPBlock != nil {
			continue
		}
		for _, p := range pods {
			if !seen[p] && peerMatches(peer, namespace, p, ns) {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// peerMatches says whether a selector peer matches the pod: a pod selector
// alone means the policy's namespace; a namespace selector alone means
// every pod of the namespaces it selects.
func peerMatches(peer networkingv1.NetworkPolicyPeer, namespace string, p *corev1.Pod, ns map[string]labels.Set) bool {
	if peer.NamespaceSelector == nil {
		if p.Namespace != namespace {
			return false
		}
	} else if !matches(peer.NamespaceSelector, ns[p.Namespace]) {
		return false
	}
	return peer.PodSelector == nil || matches(peer.PodSelector, p.Labels)
}

func matches(sel *metav1.LabelSelector, set labels.Set) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(set)
}

// resolvePorts turns a rule's ports into numbers, resolving named ports on
// the pod (nil for none); ok is false when ports were listed but none
// resolved, so the rule allows nothing.
func resolvePorts(in []networkingv1.NetworkPolicyPort, pod *corev1.Pod) (ports []Port, ok bool) {
	if len(in) == 0 {
		return nil, true
	}
	for _, p := range in {
		proto := string(corev1.ProtocolTCP)
		if p.Protocol != nil {
			proto = string(*p.Protocol)
		}
		if !knownProtocols[proto] {
			continue // the API refuses others; nothing else reaches the nft script
		}
		switch {
		case p.Port == nil:
			ports = append(ports, Port{Protocol: proto})
		case p.Port.StrVal == "" && p.Port.IntVal > 0:
			end := int32(0)
			if p.EndPort != nil {
				end = *p.EndPort
			}
			ports = append(ports, Port{Protocol: proto, Port: p.Port.IntVal, EndPort: end})
		case pod != nil:
			if n := namedPort(pod, p.Port.StrVal, proto); n > 0 {
				ports = append(ports, Port{Protocol: proto, Port: n})
			}
		}
	}
	return ports, len(ports) > 0
}

// knownProtocols are the protocols a NetworkPolicy port may name.
var knownProtocols = map[string]bool{"TCP": true, "UDP": true, "SCTP": true}

func hasNamedPort(ports []networkingv1.NetworkPolicyPort) bool {
	for _, p := range ports {
		if p.Port != nil && p.Port.StrVal != "" {
			return true
		}
	}
	return false
}

// namedPort is the number of the pod's container port of that name and
// protocol, or 0.
func namedPort(pod *corev1.Pod, name, proto string) int32 {
	for _, c := range pod.Spec.Containers {
		for _, cp := range c.Ports {
			p := string(cp.Protocol)
			if p == "" {
				p = string(corev1.ProtocolTCP)
			}
			if cp.Name == name && p == proto {
				return cp.ContainerPort
			}
		}
	}
	return 0
}

func isIPv4CIDR(s string) bool {
	ip, _, err := net.ParseCIDR(s)
	return err == nil && ip.To4() != nil
}

func ipv4Only(cidrs []string) []string {
	var out []string
	for _, c := range cidrs {
		if isIPv4CIDR(c) {
			out = append(out, c)
		}
	}
	return out
}
