package netpol

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// bridgeNFCallIPTables makes bridged IPv4 traffic (pod to pod on the CNI
// bridge) pass the inet hooks; the node records and restores it.
const bridgeNFCallIPTables = "/proc/sys/net/bridge/bridge-nf-call-iptables"

// Enforcer keeps the table in step with the cluster.
type Enforcer struct {
	pods     cache.SharedIndexInformer
	ns       cache.SharedIndexInformer
	policies cache.SharedIndexInformer
	changed  chan struct{}
	// applied is the last script loaded and chains each pod's rendered
	// rules, to know whose connections to cut.
	applied string
	chains  map[string]string
	// Errorf reports a failed apply (the next change retries).
	Errorf func(format string, args ...any)
}

// New watches pods, namespaces and NetworkPolicies with cfg's identity,
// which needs only get, list and watch on them.
func New(cfg *rest.Config) (*Enforcer, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	f := informers.NewSharedInformerFactory(cs, 0)
	e := &Enforcer{
		pods:     f.Core().V1().Pods().Informer(),
		ns:       f.Core().V1().Namespaces().Informer(),
		policies: f.Networking().V1().NetworkPolicies().Informer(),
		changed:  make(chan struct{}, 1),
		Errorf:   func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) },
	}
	for _, inf := range []cache.SharedIndexInformer{e.pods, e.ns, e.policies} {
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { e.poke() },
			UpdateFunc: func(any, any) { e.poke() },
			DeleteFunc: func(any) { e.poke() },
		}); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *Enforcer) poke() {
	select {
	case e.changed <- struct{}{}:
	default:
	}
}

// Run enforces until ctx ends, then removes the table.
func (e *Enforcer) Run(ctx context.Context) error {
	if err := os.WriteFile(bridgeNFCallIPTables, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("letting nftables see bridged traffic: %w", err)
	}
	for _, inf := range []cache.SharedIndexInformer{e.pods, e.ns, e.policies} {
		go inf.Run(ctx.Done())
	}
	if !cache.WaitForCacheSync(ctx.Done(), e.pods.HasSynced, e.ns.HasSynced, e.policies.HasSynced) {
		return ctx.Err()
	}
	e.poke()
	for {
		select {
		case <-ctx.Done():
			return deleteSoon()
		case <-e.changed:
			if err := e.sync(ctx); err != nil && ctx.Err() == nil {
				e.Errorf("network policy enforcer: %v", err)
			}
		}
	}
}

// deleteSoon removes the table, within a few seconds.
func deleteSoon() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return Delete(ctx)
}

// sync loads the ruleset the cluster asks for, if it changed, and cuts the
// tracked connections of every pod whose rules changed: isolation must end
// connections already open, not only refuse new ones.
func (e *Enforcer) sync(ctx context.Context) error {
	rs := Compile(e.snapshot())
	script := Render(rs)
	if script == e.applied {
		return nil
	}
	if err := Apply(ctx, script, false); err != nil {
		return err
	}
	chains := podChains(rs)
	for ip, rules := range chains {
		if e.chains[ip] != rules {
			cutConnections(ctx, ip)
		}
	}
	e.applied, e.chains = script, chains
	return nil
}

// snapshot copies the informers' objects.
func (e *Enforcer) snapshot() Cluster {
	var c Cluster
	for _, o := range e.pods.GetStore().List() {
		c.Pods = append(c.Pods, *o.(*corev1.Pod))
	}
	for _, o := range e.ns.GetStore().List() {
		c.Namespaces = append(c.Namespaces, *o.(*corev1.Namespace))
	}
	for _, o := range e.policies.GetStore().List() {
		c.Policies = append(c.Policies, *o.(*networkingv1.NetworkPolicy))
	}
	return c
}

// podChains describes each isolated pod's rules, to compare between syncs.
func podChains(rs Ruleset) map[string]string {
	out := map[string]string{}
	for ip := range rs.Egress {
		out[ip] = fmt.Sprint(rs.Egress[ip], rs.Ingress[ip])
	}
	for ip := range rs.Ingress {
		out[ip] = fmt.Sprint(rs.Egress[ip], rs.Ingress[ip])
	}
	return out
}

// cutConnections deletes the pod's conntrack entries both ways, so open
// connections meet the new rules on their next packet.
func cutConnections(ctx context.Context, ip string) {
	for _, flag := range []string{"--orig-src", "--orig-dst"} {
		// conntrack exits non-zero when nothing matched; that is fine.
		_ = exec.CommandContext(ctx, "conntrack", "-D", flag, ip).Run()
	}
}
