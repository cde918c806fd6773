package ingest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Where a self-signed ingest certificate is kept and its CA published.
const (
	// SelfSignedSecret holds the CA and the serving certificate, shared by
	// every replica (the first to start creates it).
	SelfSignedSecret = "fido-ingest-tls"
	// CAConfigMap publishes the CA (key ca.crt) for detectors to trust.
	CAConfigMap = "fido-ingest-ca"
	// certRenewBefore is how long before expiry a new certificate is made.
	certRenewBefore = 30 * 24 * time.Hour
	certValidity    = 365 * 24 * time.Hour
)

// Self-signed TLS: the certificate lives in a Secret of the operator
// namespace, its CA in a ConfigMap there.
// +kubebuilder:rbac:groups="",namespace=fido-system,resources=configmaps,verbs=get;create;update
// +kubebuilder:rbac:groups="",namespace=fido-system,resources=secrets,verbs=get;create;update

// LoadOrCreateCertificate returns the ingest server's certificate from the
// Secret SelfSignedSecret, creating (or, near expiry, renewing) a CA and a
// certificate for the Services' DNS names when needed, and publishes the
// CA in the ConfigMap CAConfigMap so detectors can trust it. Every server
// of the manager that serves TLS this way (ingest, the console) passes the
// same services and shares the one certificate and CA; a certificate that
// does not name all of them is renewed.
func LoadOrCreateCertificate(ctx context.Context, c client.Client, namespace string, services ...string) (*tls.Certificate, error) {
	if len(services) == 0 {
		return nil, fmt.Errorf("a self-signed certificate needs at least one Service name")
	}
	names := dnsNames(services, namespace)
	key := client.ObjectKey{Namespace: namespace, Name: SelfSignedSecret}
	for range 3 {
		secret := &corev1.Secret{}
		getErr := c.Get(ctx, key, secret)
		if getErr != nil && !apierrors.IsNotFound(getErr) {
			return nil, fmt.Errorf("reading Secret %s: %w", key, getErr)
		}
		if getErr == nil {
			if cert, ok := usable(secret, names); ok {
				return cert, publishCA(ctx, c, namespace, secret.Data["ca.crt"])
			}
		}
		data, err := selfSigned(names, time.Now())
		if err != nil {
			return nil, err
		}
		if getErr != nil { // not found: create it
			secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}, Type: corev1.SecretTypeTLS, Data: data}
			err = c.Create(ctx, secret)
		} else { // expiring or unreadable: renew it
			secret.Data = data
			err = c.Update(ctx, secret)
		}
		if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) {
			continue // another replica was first: use its certificate
		}
		if err != nil {
			return nil, fmt.Errorf("writing Secret %s: %w", key, err)
		}
	}
	return nil, fmt.Errorf("could not read or create Secret %s", key)
}

// usable parses the Secret's certificate, unless it is close to expiry or
// does not name every one of names.
func usable(secret *corev1.Secret, names []string) (*tls.Certificate, bool) {
	cert, err := tls.X509KeyPair(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey])
	if err != nil || len(cert.Certificate) == 0 {
		return nil, false
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil || time.Until(leaf.NotAfter) < certRenewBefore {
		return nil, false
	}
	for _, n := range names {
		if !slices.Contains(leaf.DNSNames, n) {
			return nil, false
		}
	}
	return &cert, true
}

// publishCA writes the CA into the ConfigMap when it differs.
func publishCA(ctx context.Context, c client.Client, namespace string, ca []byte) error {
	cm := &corev1.ConfigMap{}
	key := client.ObjectKey{Namespace: namespace, Name: CAConfigMap}
	err := c.Get(ctx, key, cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}, Data: map[string]string{"ca.crt": string(ca)}}
		if err := c.Create(ctx, cm); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("publishing the ingest CA in ConfigMap %s: %w", key, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading ConfigMap %s: %w", key, err)
	case cm.Data["ca.crt"] == string(ca):
		return nil
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data["ca.crt"] = string(ca)
	if err := c.Update(ctx, cm); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("publishing the ingest CA in ConfigMap %s: %w", key, err)
	}
	return nil
}

// dnsNames are the names a certificate for the Services carries: each
// Service's short and qualified names, and localhost (port-forwards).
func dnsNames(services []string, namespace string) []string {
	var names []string
	for _, s := range services {
		names = append(names, s, s+"."+namespace, s+"."+namespace+".svc", s+"."+namespace+".svc.cluster.local")
	}
	return append(names, "localhost")
}

// selfSigned makes a CA and a serving certificate for names (the first
// Service's .svc name, names[2], is its common name), as Secret data:
// tls.crt, tls.key and ca.crt.
func selfSigned(names []string, now time.Time) (map[string][]byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTemplate := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "fido-ingest-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(certValidity),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	template := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: names[2]}, DNSNames: names,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(certValidity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, caTemplate, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	ca := pemOf("CERTIFICATE", caDER)
	return map[string][]byte{
		corev1.TLSCertKey:       append(pemOf("CERTIFICATE", der), ca...),
		corev1.TLSPrivateKeyKey: pemOf("EC PRIVATE KEY", keyDER),
		"ca.crt":                ca,
	}, nil
}

func pemOf(kind string, der []byte) []byte {
	var b bytes.Buffer
	_ = pem.Encode(&b, &pem.Block{Type: kind, Bytes: der})
	return b.Bytes()
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
