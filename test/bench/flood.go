package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

// floodBatch is how many Falco events one flood request carries.
const floodBatch = 100

// runFlood sends n distinct alerts from the falco token (a stolen token, a
// runaway detector) in batches from many senders, while a second detector
// reports one alert every 200 ms. It prints the flood's answers, whether
// every answer the second detector got was 202 and became an Incident,
// the Incidents the API server holds, and the manager's memory.
func (b *bench) runFlood(n, senders int) error {
	ctx := context.Background()
	if err := b.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flooded"}}); err != nil {
		return err
	}
	var codes sync.Map // HTTP status → *atomic.Int64 (alerts)
	count := func(code, alerts int) {
		v, _ := codes.LoadOrStore(code, new(atomic.Int64))
		v.(*atomic.Int64).Add(int64(alerts))
	}
	stop := make(chan struct{})
	scanner := make(chan map[int]int, 1)
	go func() { scanner <- b.reportSteadily(stop) }()

	start := time.Now()
	requests := (n + floodBatch - 1) / floodBatch
	_ = parallel(requests, senders, func(i int) error {
		size := min(floodBatch, n-i*floodBatch)
		count(b.postFlood(i*floodBatch, size), size)
		return nil
	})
	elapsed := time.Since(start)
	close(stop)
	steady := <-scanner

	var answers []string
	codes.Range(func(k, v any) bool {
		answers = append(answers, fmt.Sprintf("%d: %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	fmt.Printf("flood: %d alerts in %d requests from %d senders in %s; alerts by answer: %s\n",
		n, requests, senders, elapsed.Round(time.Second), strings.Join(answers, ", "))
	// Let the spool drain: what was accepted becomes incidents.
	var all fidov1.IncidentList
	for last, stable := -1, 0; stable < 3; time.Sleep(2 * time.Second) {
		if err := b.client.List(ctx, &all); err != nil {
			return err
		}
		if len(all.Items) == last {
			stable++
		} else {
			last, stable = len(all.Items), 0
		}
	}
	var scanned fidov1.IncidentList
	if err := b.client.List(ctx, &scanned, client.MatchingLabels{fidov1.LabelDetector: "scanner"}); err != nil {
		return err
	}
	fmt.Printf("second detector meanwhile: answers %v, %d incidents recorded\n", steady, len(scanned.Items))
	hwm, rss := procMemory(b.operator.Process.Pid)
	fmt.Printf("incidents in the API server: %d; manager RSS %s, peak %s\n", len(all.Items), rss, hwm)
	return nil
}

// postFlood posts size distinct Falco events (distinct pods) in one request.
func (b *bench) postFlood(first, size int) int {
	var body bytes.Buffer
	for i := first; i < first+size; i++ {
		event := map[string]any{
			"rule": "Flood", "priority": "Warning", "time": time.Now().UTC().Format(time.RFC3339Nano),
			"output": "flood", "source": "syscall", "hostname": "node-1",
			"output_fields": map[string]any{"k8s.ns.name": "flooded", "k8s.pod.name": fmt.Sprintf("pod-%06d", i)},
		}
		line, _ := json.Marshal(event)
		body.Write(line)
		body.WriteByte('\n')
	}
	return b.postAs(b.ingestURL, token, body.Bytes())
}

// reportSteadily posts one generic alert every 200 ms until stop, and
// returns the answers it got.
func (b *bench) reportSteadily(stop <-chan struct{}) map[int]int {
	answers := map[int]int{}
	url := strings.Replace(b.ingestURL, "/falco", "/generic", 1)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return answers
		case <-tick.C:
		}
		body := fmt.Sprintf(`{"id":"steady-%d","detector":"scanner","rule":"Steady","priority":"Notice","subject":{"kind":"Pod","namespace":"flooded","name":"steady-%d"}}`, i, i)
		answers[b.postAs(url, scannerToken, []byte(body))]++
	}
}

// postAs posts a body with a token and returns the HTTP status (0 on a transport error).
func (b *bench) postAs(url, bearer string, body []byte) int {
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
