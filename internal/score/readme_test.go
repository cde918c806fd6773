package score

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeDocumentsVariables keeps the README's scoring reference equal
// to Variables, the text the engine is documented by.
func TestReadmeDocumentsVariables(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), Variables) {
		t.Fatal("README.md does not contain score.Variables verbatim: copy it into the Scoring section")
	}
}
