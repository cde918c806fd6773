// Command probe is the dev node's test workload. With no arguments (or
// "serve") it answers "200 ok" at / on :8080; "probe get URL" exits 0 when
// URL answers 200 within 2 s and 1 otherwise, saying why on stderr. The
// e2e tests run it on both sides of a containment to see packets dropped.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// timeout bounds a whole "probe get", connect included.
const timeout = 2 * time.Second

func main() {
	if len(os.Args) > 2 && os.Args[1] == "get" {
		if err := get(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "probe:", err)
			os.Exit(1)
		}
		fmt.Println("ok")
		return
	}
	if len(os.Args) > 1 && os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: probe [serve] | probe get URL")
		os.Exit(2)
	}
	srv := &http.Server{Addr: ":8080", Handler: http.HandlerFunc(ok), ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintln(os.Stderr, srv.ListenAndServe())
	os.Exit(1)
}

func ok(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }

// get fetches url and fails unless it answers 200 within timeout.
func get(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
