//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// artifactsDir holds the screenshots the console test takes (gitignored;
// docs/console-*.png are copies of two of them).
var artifactsDir = "artifacts"

// chromiumPath finds a Chromium or Chrome binary ($CHROMIUM first).
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browserTab is one headless Chromium with its own profile (cookies), so
// two people can use the console side by side.
type browserTab struct {
	t   testing.TB
	ctx context.Context
}

func newBrowser(t testing.TB) *browserTab {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("no Chromium found (apt-get install -y chromium, or set $CHROMIUM): the browser test of the console needs one")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	b := &browserTab{t: t, ctx: ctx}
	// Accept every confirmation the console asks for.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return b
}

// do runs actions with a deadline, failing the test on error.
func (b *browserTab) do(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v (at %s)", err, b.location())
	}
}

// waitFor polls a JavaScript predicate in the page.
func (b *browserTab) waitFor(what, predicate string, timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(200*time.Millisecond))); err != nil {
		b.t.Fatalf("browser: %s: %v (at %s)", what, err, b.location())
	}
}

func (b *browserTab) eval(expression string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expression, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("browser: evaluating %s: %v", expression, err)
	}
	return v
}

func (b *browserTab) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// login pastes a token into the login page.
func (b *browserTab) login(base, token string) {
	b.t.Helper()
	b.do(30*time.Second, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="Main"]`)))
}

// screenshot saves the whole page, at a width and in a colour scheme.
func (b *browserTab) screenshot(name string, width int64, scheme string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
	}); err != nil {
		b.t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 900), chromedp.Sleep(300*time.Millisecond)); err != nil {
		b.t.Fatal(err)
	}
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.MkdirAll(artifactsDir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(artifactsDir, name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
	_ = chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900))
	_, _ = chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{})
	return path
}

// person is a ServiceAccount bound to ClusterRoles, and a token for it.
func consolePerson(t testing.TB, ns, name string, roles ...string) (user, token string) {
	t.Helper()
	mustKubectl(t, "-n", ns, "create", "serviceaccount", name)
	for _, role := range roles {
		mustKubectl(t, "create", "clusterrolebinding", ns+"-"+name+"-"+role, "--clusterrole="+role, "--serviceaccount="+ns+":"+name)
		t.Cleanup(func() { _, _ = kubectl("delete", "clusterrolebinding", ns+"-"+name+"-"+role) })
	}
	return "system:serviceaccount:" + ns + ":" + name, strings.TrimSpace(mustKubectl(t, "-n", ns, "create", "token", name, "--duration=1h"))
}

// TestConsole drives the web console in a real headless Chromium: a
// responder logs in with a ServiceAccount token, sees an incident appear
// without reloading, opens it and approves its pending action, which
// runs; a viewer sees the incident but cannot approve (403, nothing
// changes).
func TestConsole(t *testing.T) {
	responderBrowser := newBrowser(t) // skips without Chromium
	op := startOperator(t, "fido-console")
	ns, people := "console-shop", "console-people"
	kubectlApply(t, namespaceManifest(ns, true)+"---\n"+namespaceManifest(people, false)+"---\n"+victimManifest(ns))
	responder, responderToken := consolePerson(t, people, "responder", "fido-responder", "fido-viewer")
	_, viewerToken := consolePerson(t, people, "viewer", "fido-viewer")

	// Log in and watch the incident list.
	b := responderBrowser
	b.login(op.consoleURL, responderToken)
	b.do(30*time.Second, chromedp.Navigate(op.consoleURL+"/incidents"), chromedp.WaitVisible(chromedp.ID("incident-list")))
	b.eval(`window.fidoNotReloaded = "yes"`)
	b.waitFor("the live connection", `document.getElementById("live-status").textContent.startsWith("Live")`, 20*time.Second)
	if code := op.postFalco(t, falcoEvent("Terminal shell in container", "Critical", ns, "web-1", badIP)); code != http.StatusAccepted {
		t.Fatalf("ingest answered %d", code)
	}
	b.waitFor("the incident appearing in the list", `document.getElementById("incident-list").textContent.includes("`+ns+`")`, 30*time.Second)
	if got := b.eval(`String(window.fidoNotReloaded)`); got != "yes" {
		t.Fatalf("the page was reloaded (marker %q): the list must update in place", got)
	}
	inc := incidentFor(t, ns, "web-1")
	waitPhase(t, ns, "inc", inc, "AwaitingApproval")
	action := inc + "-disableserviceaccount"

	// Open it and approve the pending action (the confirmation is accepted).
	b.do(30*time.Second, chromedp.Click(chromedp.CSS(`a[href="/incidents/`+ns+`/`+inc+`"]`)), chromedp.WaitVisible(chromedp.ID("h-score")))
	approve := `button[aria-label="Approve ` + action + `"]`
	b.do(30*time.Second, chromedp.WaitVisible(chromedp.CSS(approve)), chromedp.Click(chromedp.CSS(approve)))
	waitPhase(t, ns, "ra", action, "Succeeded")
	if by := jsonpath(t, ns, "ra", action, `{.metadata.annotations.security\.fido\.dev/approved-by}`); by != responder {
		t.Errorf("approved-by %q, want the responder %q: the approval must be sent as the user", by, responder)
	}
	b.waitFor("the action shown approved and run", `document.getElementById("incident").textContent.includes("approved by `+responder+`") && !document.querySelector('button[aria-label="Approve `+action+`"]')`, 30*time.Second)
	waitPhase(t, ns, "inc", inc, "Contained")
	b.waitFor("the incident shown contained", `document.querySelector("#incident h1 + p").textContent.includes("Contained")`, 30*time.Second)
	b.screenshot("console-incident.png", 1280, "light")
	b.screenshot("console-incident-390-dark.png", 390, "dark")

	// A second incident waits for approval; the viewer sees it but cannot approve it.
	if code := op.postFalco(t, falcoEvent("Terminal shell in container", "Critical", ns, "web-2", badIP)); code != http.StatusAccepted {
		t.Fatalf("ingest answered %d", code)
	}
	other := incidentFor(t, ns, "web-2")
	otherAction := other + "-disableserviceaccount"
	waitPhase(t, ns, "ra", otherAction, "AwaitingApproval")
	v := newBrowser(t)
	v.login(op.consoleURL, viewerToken)
	v.do(30*time.Second, chromedp.Navigate(op.consoleURL+"/incidents/"+ns+"/"+other), chromedp.WaitVisible(chromedp.ID("h-actions")))
	v.waitFor("the viewer seeing the pending action", `document.getElementById("h-actions").parentElement.textContent.includes("`+otherAction+`")`, 20*time.Second)
	if buttons := v.eval(`String(document.querySelectorAll('button[aria-label^="Approve"], button[aria-label^="Revert"], form[action$="/resolve"]').length)`); buttons != "0" {
		t.Errorf("the viewer is offered %s approve, revert or resolve controls", buttons)
	}
	// She posts the approval anyway, with her own session's CSRF token.
	status := v.eval(`fetch("/actions/` + ns + `/` + otherAction + `/approve", {method: "POST", credentials: "same-origin",
		body: new URLSearchParams({_csrf: document.querySelector('input[name="_csrf"]').value, confirmed: "yes"})}).then(r => String(r.status))`)
	if status != "403" {
		t.Errorf("the viewer's approval answered %s, want 403", status)
	}
	time.Sleep(2 * time.Second)
	if approved := jsonpath(t, ns, "ra", otherAction, "{.spec.approved}"); approved == "true" {
		t.Error("the viewer's refused approval changed the action")
	}
	if phase := jsonpath(t, ns, "ra", otherAction, "{.status.phase}"); phase != "AwaitingApproval" {
		t.Errorf("after the viewer's refused approval the action is %s", phase)
	}

	// The rest of the pages, now that there is something on each.
	b.do(30*time.Second, chromedp.Navigate(op.consoleURL+"/"), chromedp.WaitVisible(chromedp.ID("overview")))
	b.waitFor("the pending approval on the overview", `document.getElementById("overview").textContent.includes("`+otherAction+`")`, 20*time.Second)
	b.screenshot("console-overview.png", 1280, "light")
	b.screenshot("console-overview-390.png", 390, "light")
	b.screenshot("console-overview-dark.png", 1280, "dark")
	for _, p := range []string{"/incidents", "/actions", "/policies", "/feeds", "/policies/" + opNamespace + "/default/preview?n=20"} {
		b.do(30*time.Second, chromedp.Navigate(op.consoleURL+p), chromedp.WaitVisible(chromedp.ID("main")))
		b.screenshot("console"+strings.NewReplacer("/", "-", "?", "-", "=", "-").Replace(p)+".png", 1280, "light")
	}
	t.Logf("screenshots in %s", filepath.Join("test", "e2e", artifactsDir))
}

// TestPluginConsole is kubectl fido console: the same pages on 127.0.0.1
// with the kubeconfig's identity, opened by the URL it prints, for a user
// who may read one namespace only (the console's cache then watches just
// that namespace).
func TestPluginConsole(t *testing.T) {
	ns, people := "console-local", "console-local-people"
	kubectlApply(t, namespaceManifest(ns, false)+"---\n"+namespaceManifest(people, false)+"---\n"+incidentManifest(ns, "local-incident", "Local console rule", "web-1"))
	mustKubectl(t, "-n", people, "create", "serviceaccount", "reader")
	mustKubectl(t, "-n", ns, "create", "rolebinding", "reader", "--clusterrole=fido-viewer", "--serviceaccount="+people+":reader")
	token := strings.TrimSpace(mustKubectl(t, "-n", people, "create", "token", "reader", "--duration=1h"))

	cmd := exec.Command(pluginBin(t), "console", "--port", "0", "-n", ns, "--kubeconfig", kubeconfigFor(t, "", token))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedWriter
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("kubectl fido console stderr:\n%s", stderr.String())
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if i := strings.Index(sc.Text(), "http://127.0.0.1:"); i >= 0 {
				found <- strings.TrimSpace(sc.Text()[i:])
			}
		}
	}()
	var link string
	select {
	case link = <-found:
	case <-time.After(60 * time.Second):
		t.Fatalf("kubectl fido console printed no URL; stderr:\n%s", stderr.String())
	}
	u, _ := url.Parse(link)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	get := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, u.Scheme+"://"+u.Host+path, http.NoBody)
		req.Header.Set("Accept", "text/html")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/incidents"); code != http.StatusUnauthorized {
		t.Errorf("without the printed key: %d, want 401", code)
	}
	if code, body := get(u.RequestURI()); code != http.StatusOK || !strings.Contains(body, "system:serviceaccount:"+people+":reader") {
		t.Fatalf("the printed URL: %d, want the overview for the reader", code)
	}
	eventually(t, 30*time.Second, func() error {
		code, body := get("/incidents/" + ns + "/local-incident")
		if code != http.StatusOK || !strings.Contains(body, "Local console rule") {
			return fmt.Errorf("the incident page: %d", code)
		}
		if strings.Contains(body, "Mark false positive") {
			return fmt.Errorf("a reader is offered to close the incident")
		}
		return nil
	})
	if code, _ := get("/feeds"); code != http.StatusForbidden {
		t.Errorf("feeds for a reader of one namespace: %d, want 403", code)
	}
}
