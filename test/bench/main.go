// Command bench is the containment benchmark behind `make bench`: against a
// local control plane it runs bin/fido as its own process, posts Falco
// alerts for pods (one pod per namespace) and times each from the POST
// until a watch sees the pod's isolating NetworkPolicy. It reports idle and
// burst latencies, sustained containments per second, API writes per
// contained incident (from the API server's own request metrics) and the
// manager's peak RSS once many incidents exist. It is not a test: it
// measures, and docs/benchmarks.md records what it printed.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/testenv"
)

const (
	opNamespace  = "fido-system"
	token        = "bench-token-0123456789abcdef0123"
	scannerToken = "bench-scanner-token-0123456789ab"
)

type config struct {
	idle, burst, senders int
	// incidents are the counts at which the manager's memory is read.
	incidents []int
	// heapProfile, when set, is where a heap profile is saved at each count.
	heapProfile               string
	flood                     int
	operatorArgs, operatorEnv string
}

func main() {
	var c config
	flag.IntVar(&c.idle, "idle", 50, "alerts sent one at a time")
	flag.IntVar(&c.burst, "burst", 1000, "alerts sent at once")
	flag.IntVar(&c.senders, "senders", 50, "concurrent senders in the burst")
	flag.Func("incidents", "comma-separated counts of incidents at which the manager's RSS is read (default 10000)", func(v string) error {
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return err
			}
			c.incidents = append(c.incidents, n)
		}
		return nil
	})
	flag.StringVar(&c.heapProfile, "heap-profile", "", "save the manager's heap profile at each count to FILE-<count>.pprof (starts the manager with --pprof-bind-address)")
	flag.IntVar(&c.flood, "flood", 0, "instead of the containment runs: this many distinct alerts from one token while a second detector keeps reporting")
	flag.StringVar(&c.operatorArgs, "operator-args", "", "extra flags for bin/fido, space-separated")
	flag.StringVar(&c.operatorEnv, "operator-env", "", "extra environment of bin/fido only, space-separated KEY=VALUE (e.g. GOMEMLIMIT=180MiB)")
	flag.Parse()
	if c.incidents == nil {
		c.incidents = []int{10000}
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// bench holds the running system.
type bench struct {
	cfg       *rest.Config
	kube      kubernetes.Interface
	client    client.Client
	ingestURL string
	operator  *exec.Cmd
	seen      *watcher
	pprofAddr string
}

// saveHeapProfile saves the manager's heap profile (after a GC) to path.
func (b *bench) saveHeapProfile(path string) error {
	resp, err := http.Get("http://" + b.pprofAddr + "/debug/pprof/heap?gc=1")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fmt.Printf("heap profile: %s (go tool pprof -top %s)\n", path, path)
	return os.WriteFile(path, raw, 0o600)
}

func run(c config) error {
	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join(testenv.RepoRoot(), "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	cfg.QPS, cfg.Burst = 1000, 2000
	b := &bench{cfg: cfg}
	if err := b.setUp(env); err != nil {
		return err
	}
	defer b.stopOperator()

	fmt.Printf("machine: %d CPUs; operator flags: %s\n", runtimeCPUs(), strings.Join(b.operator.Args[1:], " "))
	if c.flood > 0 {
		return b.runFlood(c.flood, c.senders)
	}
	if err := b.createPods("idle", c.idle); err != nil {
		return err
	}
	if err := b.createPods("burst", c.burst); err != nil {
		return err
	}
	// One alert first, not counted: the operator starts informers and
	// compiles the policy on its first incident.
	if err := b.createPods("warmup", 1); err != nil {
		return err
	}
	if b.post("warmup-0000", "Critical") == http.StatusAccepted {
		b.seen.wait("warmup-0000", 30*time.Second)
	}
	idle := b.runIdle(c.idle)
	report("idle (one alert at a time)", idle, c.idle, 0)

	before, err := b.requestCounts()
	if err != nil {
		return err
	}
	burst, elapsed := b.runBurst(c.burst, c.senders)
	report(fmt.Sprintf("burst (%d alerts, %d senders)", c.burst, c.senders), burst, c.burst, elapsed)
	time.Sleep(3 * time.Second) // let the incidents record their final phase
	after, err := b.requestCounts()
	if err != nil {
		return err
	}
	printRequests(before, after, len(burst))

	for _, n := range c.incidents {
		if err := b.measureRSS(n); err != nil {
			return err
		}
		if c.heapProfile != "" {
			if err := b.saveHeapProfile(fmt.Sprintf("%s-%d.pprof", c.heapProfile, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *bench) setUp(env *envtest.Environment) error {
	var err error
	if b.kube, err = kubernetes.NewForConfig(b.cfg); err != nil {
		return err
	}
	if b.client, err = client.New(b.cfg, client.Options{Scheme: testenv.Scheme()}); err != nil {
		return err
	}
	ctx := context.Background()
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opNamespace}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "fido-ingest-tokens", Namespace: opNamespace}, StringData: map[string]string{"falco": token, "scanner": scannerToken}},
		benchPolicy(),
	}
	for _, o := range objs {
		if err := b.client.Create(ctx, o); err != nil {
			return err
		}
	}
	if b.seen, err = watchNetworkPolicies(b.kube); err != nil {
		return err
	}
	return b.startOperator(env)
}

// benchPolicy contains every Critical alert with one IsolatePod and scores
// lower ones into a tier without actions.
func benchPolicy() *fidov1.ScoringPolicy {
	return &fidov1.ScoringPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: opNamespace},
		Spec: fidov1.ScoringPolicySpec{
			PriorityPoints: fidov1.PriorityPoints{Critical: 80, Informational: 5},
			Rules: []fidov1.ScoringRule{
				{Name: "privileged", Category: fidov1.CategoryAsset, Points: 10, Expression: "enrichment.pod.privileged"},
				{Name: "known-bad", Category: fidov1.CategoryThreat, Points: 10, Expression: "intel.exists(h, h.confidence >= 80)"},
			},
			Tiers: []fidov1.Tier{
				{Name: "contain", MinScore: 80, Severity: fidov1.SeverityCritical, Actions: []fidov1.ActionTemplate{
					{ActionParameters: fidov1.ActionParameters{Type: fidov1.ActionIsolatePod}}}},
				{Name: "record", MinScore: 0, Severity: fidov1.SeverityLow},
			},
		},
	}
}

func (b *bench) startOperator(env *envtest.Environment) error {
	admin, err := env.ControlPlane.AddUser(envtest.User{Name: "bench", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	raw, err := admin.KubeConfig()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "fido-bench-")
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, raw, 0o600); err != nil {
		return err
	}
	ingest := freeAddr()
	probes := freeAddr()
	args := []string{"--kubeconfig", kubeconfig, "--namespace", opNamespace, "--ingest-bind-address", ingest,
		"--health-probe-bind-address", probes, "--metrics-bind-address", "0", "--console-bind-address=", "--ingest-spool-path", filepath.Join(dir, "spool.db"),
		"--action-rate-limit=-1", "--namespace-action-rate-limit=-1", "--ingest-rate-limit=-1", "--zap-log-level=error"}
	if extra := strings.Fields(flag.Lookup("operator-args").Value.String()); len(extra) > 0 {
		args = append(args, extra...)
	}
	if flag.Lookup("heap-profile").Value.String() != "" {
		b.pprofAddr = freeAddr()
		args = append(args, "--pprof-bind-address", b.pprofAddr)
	}
	b.operator = exec.Command(filepath.Join(testenv.RepoRoot(), "bin", "fido"), args...)
	b.operator.Env = append(os.Environ(), strings.Fields(flag.Lookup("operator-env").Value.String())...)
	b.operator.Stdout, b.operator.Stderr = os.Stderr, os.Stderr
	if err := b.operator.Start(); err != nil {
		return fmt.Errorf("starting bin/fido (run 'make build' first): %w", err)
	}
	b.ingestURL = "http://" + ingest + "/v1/ingest/falco"
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get("http://" + probes + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("bin/fido did not become ready")
}

func (b *bench) stopOperator() {
	if b.operator != nil && b.operator.Process != nil {
		_ = b.operator.Process.Signal(syscall.SIGTERM)
		_ = b.operator.Wait()
	}
}

// createPods creates n namespaces with one privileged pod each.
func (b *bench) createPods(prefix string, n int) error {
	ctx := context.Background()
	privileged := true
	return parallel(n, 16, func(i int) error {
		ns := fmt.Sprintf("%s-%04d", prefix, i)
		if _, err := b.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return err
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27", SecurityContext: &corev1.SecurityContext{Privileged: &privileged}}}}}
		_, err := b.kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		return err
	})
}

// runIdle posts one alert at a time and waits for each containment.
func (b *bench) runIdle(n int) []time.Duration {
	var out []time.Duration
	var traces []func()
	defer func() {
		for _, trace := range traces {
			trace()
		}
	}()
	for i := 0; i < n; i++ {
		ns := fmt.Sprintf("idle-%04d", i)
		start := time.Now()
		if b.post(ns, "Critical") != http.StatusAccepted {
			continue
		}
		postDone := time.Since(start)
		if os.Getenv("BENCH_TRACE") != "" {
			traces = append(traces, func() {
				at, _ := b.seen.wait(ns, time.Second)
				fmt.Printf("trace %s: POST %s, NetworkPolicy %s\n", ns, postDone.Round(time.Millisecond), at.Sub(start).Round(time.Millisecond))
			})
		}
		if at, ok := b.seen.wait(ns, 30*time.Second); ok {
			out = append(out, at.Sub(start))
		}
	}
	return out
}

// runBurst posts n alerts from the given number of senders and waits for
// the containments; it returns the latencies and the time from the first
// POST to the last containment.
func (b *bench) runBurst(n, senders int) ([]time.Duration, time.Duration) {
	starts := make([]time.Time, n)
	first := time.Now()
	_ = parallel(n, senders, func(i int) error {
		starts[i] = time.Now()
		b.post(fmt.Sprintf("burst-%04d", i), "Critical")
		return nil
	})
	var out []time.Duration
	var last time.Time
	deadline := time.Now().Add(120 * time.Second)
	for i := 0; i < n; i++ {
		at, ok := b.seen.wait(fmt.Sprintf("burst-%04d", i), time.Until(deadline))
		if !ok {
			continue
		}
		out = append(out, at.Sub(starts[i]))
		if at.After(last) {
			last = at
		}
	}
	return out, last.Sub(first)
}

// post sends one Falco http_output event about the pod in ns.
func (b *bench) post(ns, priority string) int {
	event := map[string]any{
		"rule": "Terminal shell in container", "priority": priority, "time": time.Now().UTC().Format(time.RFC3339Nano),
		"output": "A shell was spawned in a container with an attached terminal", "source": "syscall", "hostname": "node-1",
		"output_fields": map[string]any{"k8s.ns.name": ns, "k8s.pod.name": "web", "container.name": "web", "proc.cmdline": "bash", "fd.rip": "203.0.113.9"},
	}
	body, _ := json.Marshal(event)
	return b.postAs(b.ingestURL, token, body)
}

// requestCounts reads apiserver_request_total and sums the requests per
// "write|read resource" (leases excluded: they are leader election, not
// work; watches excluded: they are long-lived).
func (b *bench) requestCounts() (map[string]float64, error) {
	raw, err := b.kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		return nil, err
	}
	counts := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		verb, resource, sub := label(line, "verb"), label(line, "resource"), label(line, "subresource")
		if resource == "leases" || verb == "WATCH" || verb == "CONNECT" {
			continue
		}
		v, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		key := resource
		if sub != "" {
			key += "/" + sub
		}
		kind := "read "
		if mutating(verb) {
			kind = "write "
		}
		counts[kind+key] += v
	}
	return counts, sc.Err()
}

func mutating(verb string) bool {
	switch verb {
	case "POST", "PUT", "PATCH", "DELETE", "APPLY":
		return true
	}
	return false
}

func label(line, name string) string {
	i := strings.Index(line, name+`="`)
	if i < 0 {
		return ""
	}
	rest := line[i+len(name)+2:]
	return rest[:strings.IndexByte(rest, '"')]
}

func printRequests(before, after map[string]float64, contained int) {
	if contained == 0 {
		contained = 1
	}
	for _, kind := range []string{"write", "read"} {
		var total float64
		var parts []string
		for k, v := range after {
			if d := v - before[k]; d > 0 && strings.HasPrefix(k, kind+" ") {
				total += d
				parts = append(parts, fmt.Sprintf("%s %.0f", strings.TrimPrefix(k, kind+" "), d))
			}
		}
		sort.Strings(parts)
		fmt.Printf("API %ss during the burst: %.0f = %.2f per contained incident (%s)\n", kind, total, total/float64(contained), strings.Join(parts, ", "))
	}
}

// measureRSS creates incidents directly (scored into a tier without
// actions) until n exist, waits for the operator to process them, and
// reads the manager's peak RSS.
func (b *bench) measureRSS(n int) error {
	ctx := context.Background()
	var have fidov1.IncidentList
	if err := b.client.List(ctx, &have); err != nil {
		return err
	}
	missing := n - len(have.Items)
	if missing <= 0 {
		hwm, rss := procMemory(b.operator.Process.Pid)
		fmt.Printf("%d incidents exist: manager RSS %s, peak %s\n", len(have.Items), rss, hwm)
		return nil
	}
	if _, err := b.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bulk"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	var bulk fidov1.IncidentList
	if err := b.client.List(ctx, &bulk, client.InNamespace("bulk")); err != nil {
		return err
	}
	first := len(bulk.Items)
	start := time.Now()
	err := parallel(missing, 16, func(i int) error {
		return b.client.Create(ctx, &fidov1.Incident{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bulk-%05d", first+i), Namespace: "bulk"},
			Spec: fidov1.IncidentSpec{Detector: "falco", Rule: "Contact K8S API Server From Container", Priority: fidov1.PriorityInformational,
				Subject: fidov1.Subject{Kind: fidov1.SubjectPod, Namespace: "bulk", Name: fmt.Sprintf("pod-%05d", first+i)}},
		})
	})
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		var list fidov1.IncidentList
		if err := b.client.List(ctx, &list, client.InNamespace("bulk")); err != nil {
			return err
		}
		done := 0
		for _, inc := range list.Items {
			if inc.Status.Phase == fidov1.IncidentNotified {
				done++
			}
		}
		if done == first+missing {
			break
		}
	}
	hwm, rss := procMemory(b.operator.Process.Pid)
	fmt.Printf("%d incidents exist (%d created in bulk, processed in %s): manager RSS %s, peak %s\n",
		n, missing, time.Since(start).Round(time.Second), rss, hwm)
	return nil
}

// procMemory reads VmHWM (peak RSS) and VmRSS of a process.
func procMemory(pid int) (hwm, rss string) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?", "?"
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "VmHWM:" {
			hwm = f[1] + " kB"
		}
		if len(f) >= 2 && f[0] == "VmRSS:" {
			rss = f[1] + " kB"
		}
	}
	return hwm, rss
}

// watcher records when a NetworkPolicy first appears in each namespace.
type watcher struct {
	mu   sync.Mutex
	seen map[string]time.Time
	cond *sync.Cond
}

func watchNetworkPolicies(kube kubernetes.Interface) (*watcher, error) {
	w := &watcher{seen: map[string]time.Time{}}
	w.cond = sync.NewCond(&w.mu)
	watch, err := kube.NetworkingV1().NetworkPolicies("").Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	go func() {
		for ev := range watch.ResultChan() {
			np, ok := ev.Object.(*networkingv1.NetworkPolicy)
			if !ok {
				continue
			}
			w.mu.Lock()
			if _, dup := w.seen[np.Namespace]; !dup {
				w.seen[np.Namespace] = time.Now()
				w.cond.Broadcast()
			}
			w.mu.Unlock()
		}
	}()
	return w, nil
}

// wait returns when the namespace's NetworkPolicy was seen, or false after timeout.
func (w *watcher) wait(ns string, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	go func() { time.Sleep(timeout); w.mu.Lock(); w.cond.Broadcast(); w.mu.Unlock() }()
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if at, ok := w.seen[ns]; ok {
			return at, true
		}
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		w.cond.Wait()
	}
}

func report(name string, lat []time.Duration, sent int, elapsed time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	line := fmt.Sprintf("%s: %d/%d contained, p50 %s, p99 %s", name, len(lat), sent, pct(lat, 50), pct(lat, 99))
	if elapsed > 0 {
		line += fmt.Sprintf(", %.0f contained/s over %s", float64(len(lat))/elapsed.Seconds(), elapsed.Round(time.Millisecond))
	}
	fmt.Println(line)
}

func pct(lat []time.Duration, p int) string {
	if len(lat) == 0 {
		return "-"
	}
	i := (len(lat)*p + 99) / 100
	if i > 0 {
		i--
	}
	return lat[i].Round(100 * time.Microsecond).String()
}

// parallel runs fn for 0..n-1 on the given number of workers and returns the first error.
func parallel(n, workers int, fn func(i int) error) error {
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func runtimeCPUs() int {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(raw), "processor\t:")
}
