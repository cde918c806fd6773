package intel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
)

func TestLoaderSources(t *testing.T) {
	var gotKey string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotKey = r.Header.Get("X-Api-Key")
		w.Header().Set("ETag", `"abc"`)
		fmt.Fprintln(w, "203.0.113.5\nevil.example")
	}))
	defer srv.Close()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "intel", Name: "lists"},
			Data:       map[string]string{"ips.txt": "1.1.1.1\n2.2.2.2\n", "big": strings.Repeat("1.1.1.1\n", 200)},
			BinaryData: map[string][]byte{"hashes.csv": []byte("hash\n44d88612fea8a8f36de82e1278abb02f\n")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "intel", Name: "private"},
			Data: map[string][]byte{"feed": []byte("private.example\nconfidential-junk\n")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "intel", Name: "headers"},
			Data: map[string][]byte{"X-Api-Key": []byte("key-42\n")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "intel", Name: "bad-headers"},
			Data: map[string][]byte{"Bad Header": []byte("x")}},
	).Build()
	loader := &Loader{Reader: reader, Fetcher: loopbackFetcher()}
	ref := func(name, key string) *fidov1.ObjectKeyRef {
		return &fidov1.ObjectKeyRef{Namespace: "intel", Name: name, Key: key}
	}

	tests := []struct {
		name        string
		spec        fidov1.ThreatFeedSpec
		wantCounts  map[string]int64
		wantSamples string
		wantETag    string
		wantErr     string
		wantClass   string // "spec", "source" or "" for transient
	}{
		{name: "inline", spec: fidov1.ThreatFeedSpec{Inline: []string{"1.1.1.1", "evil.example", "junk"}},
			wantCounts: map[string]int64{"IP": 1, "Domain": 1}, wantSamples: `line 3: "junk": not a recognisable indicator`},
		{name: "configmap data", spec: fidov1.ThreatFeedSpec{ConfigMapRef: ref("lists", "ips.txt")},
			wantCounts: map[string]int64{"IP": 2}},
		{name: "configmap binaryData as CSV", spec: fidov1.ThreatFeedSpec{ConfigMapRef: ref("lists", "hashes.csv"), Format: fidov1.FormatCSV, CSV: &fidov1.CSVFormat{HasHeader: true}},
			wantCounts: map[string]int64{"MD5": 1}},
		{name: "secret samples are redacted", spec: fidov1.ThreatFeedSpec{SecretRef: ref("private", "feed")},
			wantCounts: map[string]int64{"Domain": 1}, wantSamples: "line 2: not a recognisable indicator"},
		{name: "url with header secret", spec: fidov1.ThreatFeedSpec{URL: srv.URL, HeadersSecretRef: &fidov1.ObjectRef{Namespace: "intel", Name: "headers"}},
			wantCounts: map[string]int64{"IP": 1, "Domain": 1}, wantETag: `"abc"`},
		{name: "missing configmap", spec: fidov1.ThreatFeedSpec{ConfigMapRef: ref("nope", "k")}, wantErr: "configmap intel/nope not found", wantClass: "source"},
		{name: "missing key", spec: fidov1.ThreatFeedSpec{ConfigMapRef: ref("lists", "nope")}, wantErr: `has no key "nope"`, wantClass: "source"},
		{name: "configmap over maxBytes", spec: fidov1.ThreatFeedSpec{ConfigMapRef: ref("lists", "big"), MaxBytes: 1024}, wantErr: "larger than maxBytes", wantClass: "source"},
		{name: "bad header names", spec: fidov1.ThreatFeedSpec{URL: srv.URL, HeadersSecretRef: &fidov1.ObjectRef{Namespace: "intel", Name: "bad-headers"}}, wantErr: "not a valid header name", wantClass: "source"},
		{name: "malformed STIX", spec: fidov1.ThreatFeedSpec{Inline: []string{"{"}, Format: fidov1.FormatSTIX21}, wantErr: "parsing the feed", wantClass: "source"},
		{name: "two sources", spec: fidov1.ThreatFeedSpec{Inline: []string{"x"}, URL: srv.URL}, wantErr: "exactly one", wantClass: "spec"},
		{name: "csv options on a plain feed", spec: fidov1.ThreatFeedSpec{Inline: []string{"x"}, CSV: &fidov1.CSVFormat{}}, wantErr: "csv may only", wantClass: "spec"},
		{name: "ftp url", spec: fidov1.ThreatFeedSpec{URL: "ftp://feeds.example/x"}, wantErr: "not allowed", wantClass: "spec"},
		{name: "tiny maxBytes", spec: fidov1.ThreatFeedSpec{Inline: []string{"x"}, MaxBytes: 10}, wantErr: "maxBytes", wantClass: "spec"},
		{name: "unknown indicator type", spec: fidov1.ThreatFeedSpec{Inline: []string{"x"}, IndicatorType: "Email"}, wantErr: "indicatorType", wantClass: "spec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			feed := &fidov1.ThreatFeed{ObjectMeta: metav1.ObjectMeta{Name: "f"}, Spec: tt.spec}
			res, err := loader.Load(context.Background(), feed, Validators{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if got := errorClass(err); got != tt.wantClass {
					t.Errorf("class = %q, want %q", got, tt.wantClass)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			assertCounts(t, res.Set, tt.wantCounts)
			if got := strings.Join(res.Report.Samples, "|"); got != tt.wantSamples {
				t.Errorf("samples = %q, want %q", got, tt.wantSamples)
			}
			if res.Validators.ETag != tt.wantETag {
				t.Errorf("etag = %q, want %q", res.Validators.ETag, tt.wantETag)
			}
		})
	}
	if gotKey != "key-42" {
		t.Errorf("header from the secret = %q, want key-42", gotKey)
	}
}

func TestMetaFor(t *testing.T) {
	feed := &fidov1.ThreatFeed{ObjectMeta: metav1.ObjectMeta{Name: "tor"}, Spec: fidov1.ThreatFeedSpec{Confidence: 150, Tags: []string{"tor", "tor", " "}}}
	got := MetaFor(feed)
	if got.Name != "tor" || got.Confidence != 100 || got.Severity != fidov1.SeverityMedium || strings.Join(got.Tags, ",") != "tor" {
		t.Errorf("MetaFor = %+v", got)
	}
}

// errorClass names the class of a Load error.
func errorClass(err error) string {
	var spec *SpecError
	var source *SourceError
	switch {
	case errors.As(err, &spec):
		return "spec"
	case errors.As(err, &source):
		return "source"
	}
	return ""
}

// TestLoaderRefusesReferencesOutsideItsNamespace: a feed author cannot make
// the operator read a ConfigMap or Secret of another namespace, nor send
// one to a URL as headers.
func TestLoaderRefusesReferencesOutsideItsNamespace(t *testing.T) {
	loader := &Loader{Reader: fake.NewClientBuilder().Build(), Namespace: "fido-system"}
	other := &fidov1.ObjectKeyRef{Namespace: "shop", Name: "db", Key: "password"}
	for field, spec := range map[string]fidov1.ThreatFeedSpec{
		"secretRef":        {Format: fidov1.FormatPlainList, IndicatorType: fidov1.IndicatorIP, SecretRef: other},
		"configMapRef":     {Format: fidov1.FormatPlainList, IndicatorType: fidov1.IndicatorIP, ConfigMapRef: other},
		"headersSecretRef": {Format: fidov1.FormatPlainList, IndicatorType: fidov1.IndicatorIP, URL: "https://feeds.example/ips", HeadersSecretRef: &fidov1.ObjectRef{Namespace: "shop", Name: "db"}},
		"caConfigMapRef":   {Format: fidov1.FormatPlainList, IndicatorType: fidov1.IndicatorIP, URL: "https://feeds.example/ips", CAConfigMapRef: other},
	} {
		_, err := loader.Load(context.Background(), &fidov1.ThreatFeed{Spec: spec}, Validators{})
		var specErr *SpecError
		if !errors.As(err, &specErr) || !strings.Contains(err.Error(), field+` is in namespace "shop"`) {
			t.Errorf("%s: error %v, want a spec error naming it", field, err)
		}
	}
}

// TestLoaderCapsFeedSize: the operator's cap wins over a feed's own
// maxBytes, so a feed author cannot make the leader load more than its
// memory allows.
func TestLoaderCapsFeedSize(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "fido-system", Name: "big"},
		Data:       map[string]string{"ips": strings.Repeat("203.0.113.7\n", 200)},
	}).Build()
	spec := fidov1.ThreatFeedSpec{Format: fidov1.FormatPlainList, IndicatorType: fidov1.IndicatorIP, MaxBytes: 1 << 20,
		ConfigMapRef: &fidov1.ObjectKeyRef{Namespace: "fido-system", Name: "big", Key: "ips"}}
	if _, err := (&Loader{Reader: reader}).Load(context.Background(), &fidov1.ThreatFeed{Spec: spec}, Validators{}); err != nil {
		t.Fatalf("without a cap: %v", err)
	}
	_, err := (&Loader{Reader: reader, MaxBytes: 1024}).Load(context.Background(), &fidov1.ThreatFeed{Spec: spec}, Validators{})
	if err == nil || !strings.Contains(err.Error(), "1024") {
		t.Fatalf("over the operator's cap: %v", err)
	}
}
