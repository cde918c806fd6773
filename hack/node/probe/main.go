// Command probe is the dev node's test workload. With no arguments it
// answers "200 ok" at / on :8080; "probe serve ADDR" listens on ADDR
// instead (a host-network pod must not take the node's :8080).
//
//	probe get [-sa] URL   exits 0 when URL answers 200 within 2 s, 1 otherwise
//	                      (saying why on stderr); -sa sends the pod's service
//	                      account token and trusts its CA, as a client-go
//	                      program in the pod would.
//	probe watch [-keepalive] URL
//	                      GETs URL every 50 ms (300 ms each) and prints one
//	                      line per attempt: its start in Unix nanoseconds and
//	                      "ok" or "fail". Each attempt is a new connection;
//	                      with -keepalive they reuse one while it works.
//
// The e2e tests run it on both sides of a containment to see packets
// dropped and tokens refused.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// timeout bounds a whole "probe get", connect included.
const timeout = 2 * time.Second

// serviceAccountDir is where the kubelet projects the pod's token and CA.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount/"

func main() {
	args := os.Args[1:]
	switch {
	case len(args) == 0:
		serve(":8080")
	case len(args) == 2 && args[0] == "serve":
		serve(args[1])
	case len(args) == 2 && args[0] == "get":
		exit(get(args[1], http.DefaultClient, "", timeout))
	case len(args) == 3 && args[0] == "get" && args[1] == "-sa":
		exit(getAsServiceAccount(args[2]))
	case len(args) == 2 && args[0] == "watch":
		watch(args[1], false)
	case len(args) == 3 && args[0] == "watch" && args[1] == "-keepalive":
		watch(args[2], true)
	default:
		fmt.Fprintln(os.Stderr, "usage: probe [serve ADDR] | probe get [-sa] URL | probe watch [-keepalive] URL")
		os.Exit(2)
	}
}

func serve(addr string) {
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(ok), ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintln(os.Stderr, srv.ListenAndServe())
	os.Exit(1)
}

func ok(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }

func exit(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
	fmt.Println("ok")
}

// get fetches url and fails unless it answers 200 within limit.
func get(url string, c *http.Client, token string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// getAsServiceAccount fetches url with the pod's projected token, trusting
// only the projected CA.
func getAsServiceAccount(url string) error {
	token, err := os.ReadFile(serviceAccountDir + "token")
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(serviceAccountDir + "ca.crt")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return errors.New("ca.crt holds no certificate")
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	return get(url, c, strings.TrimSpace(string(token)), timeout)
}

// watch probes url until killed. Without keepalive every attempt is a new
// connection, so a rule that drops new flows shows on the next attempt;
// with it, an open connection shows whether it is cut too.
func watch(url string, keepalive bool) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: !keepalive}}
	for {
		start := time.Now()
		result := "ok"
		if get(url, c, "", 300*time.Millisecond) != nil {
			result = "fail"
		}
		fmt.Printf("%d %s\n", start.UnixNano(), result)
		time.Sleep(time.Until(start.Add(50 * time.Millisecond)))
	}
}
