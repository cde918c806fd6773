package logging

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
)

func TestQuietShutdown(t *testing.T) {
	var lines []string
	base := funcr.New(func(prefix, args string) { lines = append(lines, prefix+" "+args) }, funcr.Options{})
	stopping := false
	l := QuietShutdown(base, func() bool { return stopping }).WithName("manager").WithValues("k", "v")
	lost := errors.New("leader election lost")

	l.Error(lost, releasedMessage)
	stopping = true
	l.Error(lost, releasedMessage)
	l.Error(errors.New("cache sync failed"), releasedMessage)
	l.Error(errors.New("Timeout: failed waiting for *v1alpha1.ScoringPolicy Informer to sync"), syncAbortedMessage)
	l.Error(fmt.Errorf("get lease: %w", context.Canceled), "Error retrieving lease lock")
	stopping = false
	l.Error(context.Canceled, "a request cancelled while running")

	if len(lines) != 6 {
		t.Fatalf("lines %q", lines)
	}
	if !strings.Contains(lines[0], `"error"="leader election lost"`) {
		t.Errorf("a lease lost while running must stay an error: %q", lines[0])
	}
	if strings.Contains(lines[1], "error") || !strings.Contains(lines[1], "leader lease released on shutdown") || !strings.HasPrefix(lines[1], "manager") {
		t.Errorf("the release on shutdown must be one info line of the same logger: %q", lines[1])
	}
	if !strings.Contains(lines[2], "cache sync failed") {
		t.Errorf("other errors after the stop must stay errors: %q", lines[2])
	}
	if strings.Contains(lines[3], `"error"=`) || !strings.Contains(lines[3], "cache sync stopped by the shutdown") {
		t.Errorf("a sync cut short by the shutdown must be info: %q", lines[3])
	}
	if strings.Contains(lines[4], `"error"=`) || !strings.Contains(lines[4], "Error retrieving lease lock: cancelled by the shutdown") {
		t.Errorf("a renewal the shutdown cancelled must be info: %q", lines[4])
	}
	if !strings.Contains(lines[5], `"error"="context canceled"`) {
		t.Errorf("a cancelled request while running must stay an error: %q", lines[5])
	}
}
