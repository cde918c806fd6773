package ingest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestSelfSignedTLS: the first replica makes the certificate, the next
// loads the same one; the CA is published for detectors, verifies the
// Service's name, and the ingest server speaks TLS with it.
func TestSelfSignedTLS(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	first, err := LoadOrCreateCertificate(ctx, env.Client, testOperatorNS, "fido-ingest")
	if err != nil {
		t.Fatal(err)
	}
	second, err := LoadOrCreateCertificate(ctx, env.Client, testOperatorNS, "fido-ingest")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Certificate[0], second.Certificate[0]) {
		t.Fatal("a second replica made another certificate instead of sharing the first")
	}
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: testOperatorNS, Name: CAConfigMap}, cm); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(cm.Data["ca.crt"])) {
		t.Fatalf("ConfigMap %s holds no CA", CAConfigMap)
	}
	leaf, _ := x509.ParseCertificate(first.Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "fido-ingest." + testOperatorNS + ".svc"}); err != nil {
		t.Fatalf("the certificate does not verify for the Service: %v", err)
	}

	srv := startServer(t, Options{TLSCertificate: first})
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}}}
	req, _ := http.NewRequest(http.MethodPost, strings.Replace(srv.url, "http://", "https://", 1)+"/v1/ingest/falco", bytes.NewReader(uniqueFalco(t, "Over TLS", 1)))
	req.Header.Set("Authorization", "Bearer "+falcoToken)
	resp, err := https.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("over TLS: %d", resp.StatusCode)
	}
	if r, err := http.Post(srv.url+"/v1/ingest/falco", "application/json", bytes.NewReader(nil)); err == nil {
		r.Body.Close()
		if r.StatusCode == http.StatusAccepted || r.StatusCode == http.StatusUnauthorized {
			t.Errorf("plain HTTP was served: %d", r.StatusCode)
		}
	}
}

// TestSelfSignedTLSRenewsNearExpiry: a certificate close to its end is
// replaced, and the new CA published.
func TestSelfSignedTLSRenewsNearExpiry(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	ns := "renew-tls"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	old, err := selfSigned(dnsNames([]string{"fido-ingest"}, ns), time.Now().Add(-certValidity+24*time.Hour)) // expires in a day
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: SelfSignedSecret, Namespace: ns}, Type: corev1.SecretTypeTLS, Data: old}); err != nil {
		t.Fatal(err)
	}
	cert, err := LoadOrCreateCertificate(ctx, env.Client, ns, "fido-ingest")
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	if time.Until(leaf.NotAfter) < certValidity-time.Hour*2 {
		t.Fatalf("the expiring certificate was kept (not after %s)", leaf.NotAfter)
	}
	cm := &corev1.ConfigMap{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: CAConfigMap}, cm); err != nil || cm.Data["ca.crt"] == string(old["ca.crt"]) {
		t.Fatalf("the new CA is not published: %v", err)
	}
}

// TestSelfSignedTLSNamesEveryService: the console shares the ingest
// certificate; one made before the console was enabled is renewed to name
// it too, and from then on both servers load the same certificate.
func TestSelfSignedTLSNamesEveryService(t *testing.T) {
	requireEnv(t)
	ctx := context.Background()
	ns := "console-tls"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	ingestOnly, err := LoadOrCreateCertificate(ctx, env.Client, ns, "fido-ingest")
	if err != nil {
		t.Fatal(err)
	}
	both, err := LoadOrCreateCertificate(ctx, env.Client, ns, "fido-ingest", "fido-console")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ingestOnly.Certificate[0], both.Certificate[0]) {
		t.Fatal("a certificate without the console's names was kept")
	}
	leaf, _ := x509.ParseCertificate(both.Certificate[0])
	for _, name := range []string{"fido-ingest." + ns + ".svc", "fido-console." + ns + ".svc", "localhost"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("the shared certificate does not name %s: %v", name, err)
		}
	}
	again, err := LoadOrCreateCertificate(ctx, env.Client, ns, "fido-ingest", "fido-console")
	if err != nil || !bytes.Equal(again.Certificate[0], both.Certificate[0]) {
		t.Fatalf("the next replica did not share the certificate: %v", err)
	}
}
